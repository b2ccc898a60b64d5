"""Which requests the middleware leaves alone because a beacon counts them.

A page that renders ``{% pageview_beacon %}`` is counted by its beacon, whether Django
serves it now or a cache serves a copy later; so the middleware does not count it. The
tag marks the request while the page renders (a ``TemplateResponse`` is rendered before
the response goes back up through the middleware), and the middleware puts
``BEACON_HEADER`` on the response, where a page cache in front of it keeps it with the
page: a copy served by Django's ``FetchFromCacheMiddleware`` below the middleware then
carries the header, and is not counted either. ``cache_page`` caches inside the view,
before the middleware sets the header: a copy it serves (Django's cache marks such a
request ``_cache_update_cache = False``) is looked at for the tag's output instead.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from django_pageviews import stats

from .snippet import ATTRIBUTE

BEACON_ATTRIBUTE = "_pageview_beacon"
BEACON_HEADER = "X-Pageview-Beacon"
# How ResponseHeaders keys it. Looked up in its dict directly: ``in response.headers``
# goes through Mapping.__contains__, which raises and catches a KeyError for every
# response without the header, ten times the cost of the lookup (timeit: 0.41 us against
# 0.03 us), on every request.
_HEADER_KEY = BEACON_HEADER.lower()
_TAG_OUTPUT = f'{ATTRIBUTE}="'.encode()
PAGE = "page"  # the page renders a beacon
BEACON = "beacon"  # the beacon's own request: the view counts it


def mark_page(request: HttpRequest) -> None:
    setattr(request, BEACON_ATTRIBUTE, PAGE)


def mark_beacon(request: HttpRequest) -> None:
    setattr(request, BEACON_ATTRIBUTE, BEACON)


def left_to_beacon(request: HttpRequest, response: HttpResponseBase) -> bool:
    """True when a beacon counts this request, not the middleware: the page renders one
    (the response is marked for the caches on its way out), a cached copy of such a page
    (marked), or the beacon's own request. Counted as ``beacon_page`` for pages."""
    mark = request.__dict__.get(BEACON_ATTRIBUTE)
    if mark is None:
        if _HEADER_KEY not in response.headers._store and not _cached_with_beacon(
            request, response
        ):
            return False
    elif mark == BEACON:
        return True
    else:
        response.headers[BEACON_HEADER] = "1"
    stats.incr(stats.BEACON_PAGE)
    return True


def _cached_with_beacon(request: HttpRequest, response: HttpResponseBase) -> bool:
    """A copy served by Django's cache (``FetchFromCacheMiddleware`` or ``cache_page``)
    of a page that renders the beacon. Only cache hits are searched."""
    if request.__dict__.get("_cache_update_cache") is not False:
        return False
    content = getattr(response, "content", None) if not response.streaming else None
    return isinstance(content, bytes) and _TAG_OUTPUT in content
