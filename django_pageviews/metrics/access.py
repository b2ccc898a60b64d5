"""Who may scrape the metrics: an address of ``PAGEVIEW_METRICS_ALLOWED_IPS``, or whoever
may read the stats API with the ``metrics`` scope (api/access.py).

A Prometheus server on the site's private network is let in by its address, the usual
gesture for a scrape target; one elsewhere sends a token (``pageviews_token --scope
metrics``, which Prometheus sends with ``authorization: {credentials: ...}``). The
address is the connection's own (``REMOTE_ADDR``), never a forwarding header: a header
anyone can send must not open the door. A server listening on both IPv4 and IPv6 (``[::]``)
gives an IPv4 peer as an IPv4-mapped address (``::ffff:10.0.0.5``): that peer is the IPv4
address, and is matched as such (and as written).
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from django_pageviews.api.access import grant_for, require
from django_pageviews.api.tokens import METRICS
from django_pageviews.conf import metrics_networks


def check_access(request: HttpRequest) -> None:
    """Nothing if the request may scrape; RequestError (401, 403) otherwise."""
    if from_allowed_address(request):
        return
    require(grant_for(request), METRICS)


def from_allowed_address(request: HttpRequest) -> bool:
    networks = metrics_networks()
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        addresses.append(address.ipv4_mapped)  # and as written, for a ::ffff:... network
    return any(a in network for a in addresses for network in networks)
