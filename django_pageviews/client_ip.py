"""The client's address, believing forwarding headers only from configured proxies.

By default the socket peer (REMOTE_ADDR) is the client: a header any client can send is
not evidence. Behind proxies, PAGEVIEW_TRUSTED_PROXIES names their networks (the chain is
walked from the right, past trusted hops, to the first address that is not a proxy) or
PAGEVIEW_PROXY_COUNT says how many proxies append to the header. Anything malformed is
ignored, never raised: the peer address is used instead.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache, lru_cache

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

from .conf import conf, trusted_networks

CLIENT_IP_HEADERS = {
    "X-Forwarded-For": "HTTP_X_FORWARDED_FOR",
    "Forwarded": "HTTP_FORWARDED",
    "X-Real-IP": "HTTP_X_REAL_IP",
    "CF-Connecting-IP": "HTTP_CF_CONNECTING_IP",
}
CHAIN_HEADERS = ("X-Forwarded-For", "Forwarded")
MAX_HOPS = 32  # a longer chain is not a proxy chain: ignored
FORWARDED_FOR = re.compile(r'(?i)(?:^|[;,\s])for="?([^";,]+)"?')
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def is_ipv4(text: str) -> bool:
    """True when ``text`` is an IPv4 address as ``ipaddress`` accepts it (four decimal
    octets of ASCII digits, none over 255, no leading zero), which is then also its
    normalised form. One regex match where ``ipaddress`` builds an object: behind a proxy,
    every request brings an address not seen before."""
    return IPV4.fullmatch(text) is not None


@lru_cache(maxsize=4096)  # addresses repeat; parsing one costs microseconds
def parse_ip(raw: str | None) -> str | None:
    """The normalised address, or None for anything that is not one. Accepts the forms
    proxies write: ``[v6]``, ``[v6]:port``, ``v4:port``."""
    text = (raw or "").strip()
    if is_ipv4(text):
        return text
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    peer = parse_ip(request.META.get("REMOTE_ADDR"))
    if peer is None or not (conf.PROXY_COUNT or _is_trusted(peer)):
        return peer
    header = conf.CLIENT_IP_HEADER
    raw = request.META.get(CLIENT_IP_HEADERS.get(header, ""), "")
    if not isinstance(raw, str) or not raw:
        return peer
    if header not in CHAIN_HEADERS:
        return parse_ip(raw) or peer
    hops = FORWARDED_FOR.findall(raw) if header == "Forwarded" else raw.split(",")
    if not hops or len(hops) > MAX_HOPS:
        return peer
    chain = [parse_ip(hop) for hop in hops]
    if conf.PROXY_COUNT:
        # Each of the N proxies appended the address it received from: the client is
        # the N-th from the right (the peer itself is the last proxy).
        if len(chain) < conf.PROXY_COUNT:
            return peer
        return chain[-conf.PROXY_COUNT] or peer
    for hop in reversed(chain):
        if hop is None:
            return peer
        if not _is_trusted(hop):
            return hop
    return chain[0] or peer


def _is_trusted(ip: str) -> bool:
    return bool(trusted_networks()) and _in_trusted_networks(ip)


@lru_cache(maxsize=1024)  # the peer is one of a few proxies: asked on every request
def _in_trusted_networks(ip: str) -> bool:
    if is_ipv4(ip):  # also each client address in the chain, new on every request
        a, b, c, d = ip.split(".")
        value = int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)
        return any(value & mask == network for network, mask in _ipv4_networks())
    address = ipaddress.ip_address(ip)
    return any(address in network for network in trusted_networks())


@cache
def _ipv4_networks() -> tuple[tuple[int, int], ...]:
    """The trusted IPv4 networks as (address, mask) integers. An IPv4 address is never
    in an IPv6 network (``ipaddress`` answers False), so these are all it can be in."""
    return tuple(
        (int(n.network_address), int(n.netmask))
        for n in trusted_networks()
        if isinstance(n, ipaddress.IPv4Network)
    )


@receiver(setting_changed)
def _clear(*, setting: str, **kwargs: object) -> None:
    if setting == "PAGEVIEW_TRUSTED_PROXIES":
        _in_trusted_networks.cache_clear()
        _ipv4_networks.cache_clear()
