"""Who the visitor is, without keeping who the visitor is.

The visitor hash follows what privacy-first analytics do: a keyed hash of the day's salt,
the client address and the user agent. No cookie and no session is needed; the same
visitor hashes the same within one day and differently on the next, and the hash cannot
be turned back into an address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import date
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import conf

IPV4_PREFIX = 24
IPV6_PREFIX = 48
VISITOR_HASH_LENGTH = 32


@lru_cache(maxsize=4096)
def anonymize_ip(ip: str) -> str:
    """Zero the host part: /24 for IPv4, /48 for IPv6."""
    address = ipaddress.ip_address(ip)
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def stored_ip(ip: str | None) -> str | None:
    if ip is None or conf.STORE_IP:
        return ip
    return anonymize_ip(ip)


@lru_cache(maxsize=4)
def _daily_salt(day: date) -> bytes:
    # Derived, not stored: nothing to leak from the database, and it changes every day.
    key = hashlib.blake2b(str(settings.SECRET_KEY).encode(), digest_size=32).digest()
    return hashlib.blake2b(day.isoformat().encode(), key=key, person=b"pv-salt").digest()


def visitor_hash(ip: str | None, user_agent: str, day: date) -> str:
    h = hashlib.blake2b(key=_daily_salt(day), digest_size=VISITOR_HASH_LENGTH // 2)
    h.update((ip or "").encode())
    h.update(b"\0")
    h.update(user_agent.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


@receiver(setting_changed)
def _clear_salt(*, setting: str, **kwargs: object) -> None:
    if setting == "SECRET_KEY":
        _daily_salt.cache_clear()
