"""The beacon view: counts the page named by a signed token, by the middleware's rules.

Strict before anything else, and cheap: a refused beacon costs a few string checks and
at most one signature check, no database query and no I/O. An accepted one goes through
the middleware's own steps (``tracking.admitted_visitor``: excluded addresses, prefetch,
Do Not Track and Global Privacy Control when honoured, bots; ``tracking.counted_event``:
the throttle per visitor and page; ``middleware.admit``: the shared throttle and the
buffer), so a beacon can count no more than a visit to the page itself would.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, unquote, urlsplit

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from django_pageviews import stats
from django_pageviews.beacon.marks import mark_beacon
from django_pageviews.beacon.tokens import BadToken, verify
from django_pageviews.client_ip import client_ip
from django_pageviews.events import Target, stored_url
from django_pageviews.middleware import admit
from django_pageviews.tracking import admitted_visitor, counted_event, page_url

logger = logging.getLogger(__name__)

METHODS = ("GET", "POST")  # the <noscript> image, sendBeacon
PARAMS = frozenset({"t", "p", "q"})  # token; the page's path and query string, claimed
# The longest token, the longest path the middleware stores whole (2600 UTF-8 bytes,
# percent-encoded twice by the script: 5 characters a byte) and 2000 characters of query.
MAX_QUERY_LENGTH = 32_768
MAX_BODY_BYTES = 256  # sendBeacon sends none; the body is never read


class Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@csrf_exempt  # sendBeacon sends no CSRF token; a beacon changes no state of the visitor's
def beacon(request: HttpRequest) -> HttpResponse:
    """204 for every beacon that is well formed, counted or not (throttled, a bot...);
    400, 403, 405 or 413 for a refused one. Never cached anywhere: a cached answer would
    swallow the views that should reach the site."""
    mark_beacon(request)
    try:
        target = _checked(request)
    except Refused as refused:
        stats.incr(stats.BEACON_REFUSED)
        return _answer(refused.status)
    try:
        ip = client_ip(request)
        user_agent = admitted_visitor(request, ip)
        if user_agent is not None:
            admit(counted_event(request, ip, user_agent, target))
    except Exception:
        stats.incr(stats.SKIP_ERROR)
        logger.exception("Page-view beacon failed for %s", request.path)
    return _answer(204)


def _checked(request: HttpRequest) -> Target:
    """The token's target; Refused when anything about the request is wrong."""
    if request.method not in METHODS:
        raise Refused(405)
    if _body_length(request) > MAX_BODY_BYTES:
        raise Refused(413)
    query = request.META.get("QUERY_STRING", "")
    if len(query) > MAX_QUERY_LENGTH:
        raise Refused(400)
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=len(PARAMS))
    except ValueError:
        raise Refused(400) from None
    params = dict(pairs)
    if len(params) != len(pairs) or not params.keys() <= PARAMS or "t" not in params:
        raise Refused(400)
    try:
        target = verify(params["t"])
    except BadToken:
        raise Refused(403) from None
    claimed = _claimed_url(request, params)
    if claimed is not None and claimed != target.url:
        raise Refused(403)  # a token used on another page than its own
    return target


def _body_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return MAX_BODY_BYTES + 1


def _claimed_url(request: HttpRequest, params: dict[str, str]) -> str | None:
    """The URL, as the middleware records it, of the page the beacon says it was sent
    from: the script's ``p`` and ``q``, else the image's Referer; None when neither says
    (a Referrer-Policy of no-referrer), and the token alone decides."""
    if "p" in params:
        path, query = unquote(params["p"]), params.get("q", "")
    else:
        referer = request.META.get("HTTP_REFERER", "")
        if not referer:
            return None
        parts = urlsplit(referer)
        path, query = unquote(parts.path), parts.query
    if not path.startswith("/"):
        raise Refused(400)
    return stored_url(page_url(path, query))


def _answer(status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    if status == 405:
        response["Allow"] = ", ".join(METHODS)
    patch_cache_control(response, no_store=True)
    return response
