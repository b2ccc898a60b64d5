"""Who the visitor is, without keeping who the visitor is.

The visitor hash follows what privacy-first analytics do: a keyed hash of the day's
random salt (see salts.py), the client address and the user agent. No cookie and no
session is needed; the same visitor hashes the same within one day and differently on the
next, and the hash cannot be turned back into an address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from datetime import date
from functools import lru_cache

from django.conf import settings

from .client_ip import is_ipv4
from .conf import conf
from .events import VISITOR_HASH_LENGTH, PageViewEvent, local_day
from .salts import salt

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def anonymize_ip(ip: str) -> str:
    """Zero the host part: /24 for IPv4, /48 for IPv6."""
    if is_ipv4(ip):  # a string operation: behind a proxy, most addresses are new
        return ip[: ip.rfind(".")] + ".0"
    return _anonymize(ip)


@lru_cache(maxsize=4096)
def _anonymize(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def stored_ip(ip: str | None) -> str | None:
    """The address as stored: in full only if the site opted in (PAGEVIEW_STORE_IP), else
    truncated or left out, as PAGEVIEW_ANONYMIZE_IP says."""
    if ip is None or conf.STORE_IP:
        return ip
    return anonymize_ip(ip) if conf.ANONYMIZE_IP == "truncate" else None


def visitor_hash(ip: str | None, user_agent: str, day: date) -> str:
    h = _keyed(salt(day)).copy()
    h.update((ip or "").encode())
    h.update(b"\0")
    h.update(user_agent.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def anonymous_hash(day: date) -> str:
    """The hash of a view with neither an address nor a user agent: no visitor."""
    return visitor_hash(None, "", day)


@lru_cache(maxsize=8)  # a few days' salts at most
def _keyed(key: bytes) -> hashlib.blake2b:
    """The hash keyed with ``key``, the key already absorbed: a copy per view skips
    hashing the key block again."""
    return hashlib.blake2b(key=key, digest_size=VISITOR_HASH_LENGTH // 2)


def with_visitor_hashes(events: Sequence[PageViewEvent]) -> list[PageViewEvent]:
    """The events with their visitor hash computed (and the full address let go of).

    Tracking leaves the hash to the batch: the day's salt may need a database read,
    which never happens on the request path. A micro-batch spans one day (two around
    midnight): its keyed hasher is looked up once per day, not once per view.
    """
    hashers: dict[date, hashlib.blake2b] = {}
    hashed = []
    for e in events:
        if e.visitor_hash:
            hashed.append(e)
            continue
        day = local_day(e.timestamp)
        keyed = hashers.get(day)
        if keyed is None:
            keyed = hashers[day] = _keyed(salt(day))
        h = keyed.copy()
        h.update((e.client_ip or "").encode())
        h.update(b"\0")
        h.update(e.user_agent.encode("utf-8", "surrogateescape"))
        # What visitor_hash() returns; the constructor, not _replace (twice as slow).
        hashed.append(
            PageViewEvent(
                e.event_id,
                e.timestamp,
                e.target,
                e.ip_address,
                e.user_agent,
                h.hexdigest(),
                None,
                e.throttle_key,
            )
        )
    return hashed


@lru_cache(maxsize=1)
def _throttle_hasher(secret_key: str) -> hashlib.blake2b:
    """The keyed hash, its key already absorbed: each key starts from a copy of it, which
    skips hashing the key block again on every request."""
    secret = hashlib.blake2b(secret_key.encode(), digest_size=32, person=b"pv-throt").digest()
    return hashlib.blake2b(key=secret, digest_size=16)


def throttle_key(visitor: str, url: str) -> str:
    """Who viewed what, as a short key every process computes alike (no I/O): it lives in
    the cache or Redis for PAGEVIEW_THROTTLE_SECONDS, never in the database."""
    h = _throttle_hasher(str(settings.SECRET_KEY)).copy()
    h.update(visitor.encode("utf-8", "surrogateescape"))
    h.update(b"\0")
    h.update(url.encode("utf-8", "surrogateescape"))
    return h.hexdigest()
