"""Decide whether a finished request is a page view, and describe it as an event.

Pure decisions on what the request already holds: no database query, no network, no
session created. Anything that needs a lookup (a slug's primary key, a content type) is
left to the writer, which does it once per batch.
"""

from __future__ import annotations

import ipaddress
import random
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.db.models import Model
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch

from . import forks, stats
from .beacon.marks import left_to_beacon
from .bots import is_bot
from .client_ip import client_ip
from .conf import conf, excluded_networks, excluded_paths
from .events import (
    OBJECT_ID_MAX_LENGTH,
    PK,
    SLUG_MAX_LENGTH,
    USER_AGENT_MAX_LENGTH,
    VIEW_NAME_MAX_LENGTH,
    PageViewEvent,
    Target,
    stored_text,
    stored_url,
)
from .objects import model_label, view_model
from .paths import normalize_path
from .privacy import stored_ip, throttle_key
from .throttle import throttle

# A view names what it shows with ``request.pageview_object = obj``.
REQUEST_OBJECT_ATTRIBUTE = "pageview_object"
ADMIN_PREFIX = "/admin/"
AJAX_HEADER = "HTTP_X_REQUESTED_WITH"
OWN_VIEWS = "django_pageviews."
QUERY_STRING_MAX_LENGTH = 2000
# The version (4) and variant (RFC 4122) bits of a random UUID, as uuid.uuid4 sets them.
UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
UUID4_SET = (0x4000 << 64) | (0x8000 << 48)

# Seeded from os.urandom; reseeded in a forked child, or workers forked from one parent
# would draw the same ids, and the views of one would be dropped as replays of the other's.
_ids = random.Random()
forks.after_fork(_ids.seed)


def new_event_id() -> str:
    """A random version-4 UUID as 32 hex digits, as ``uuid.uuid4().hex`` makes, for a
    fraction of its cost: uuid4 makes a system call (os.urandom) and a UUID object for
    every view. The id only needs to be unique (it detects replays), not unpredictable."""
    return f"{_ids.getrandbits(128) & UUID4_CLEAR | UUID4_SET:032x}"


def build_event(request: HttpRequest, response: HttpResponseBase) -> PageViewEvent | None:
    """The event for this request, or None (with the reason counted) if it is not a view."""
    if left_to_beacon(request, response):
        return None
    if request.method != "GET":
        stats.incr(stats.SKIP_METHOD)
        return None
    if response.status_code != 200:
        stats.incr(stats.SKIP_STATUS)
        return None
    if is_excluded_page(request):
        stats.incr(stats.SKIP_EXCLUDED)
        return None
    ip = client_ip(request)
    user_agent = admitted_visitor(request, ip)
    if user_agent is None:
        return None
    return counted_event(request, ip, user_agent, _target(request, response))


def admitted_visitor(request: HttpRequest, ip: str | None) -> str | None:
    """The visitor's user agent as stored, or None (with the reason counted) when the
    request comes from an excluded address, is a prefetch, a bot, or asks not to be
    tracked. The rules about who visits, apart from what was visited: the beacon applies
    them to its own request."""
    if _is_excluded_visitor(request, ip):
        stats.incr(stats.SKIP_EXCLUDED)
        return None
    if (reason := _not_a_visit(request)) is not None:
        stats.incr(reason)
        return None
    user_agent = stored_text(request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH])
    if is_bot(user_agent):
        stats.incr(stats.SKIP_BOT)
        return None
    return user_agent


def counted_event(
    request: HttpRequest, ip: str | None, user_agent: str, target: Target
) -> PageViewEvent | None:
    """The event of an admitted visitor's view of ``target``, or None when the same
    visitor viewed it within the throttle window (this process's table; the shared check
    follows in ``admit``)."""
    user_id = _loaded_user_id(request)
    visitor = f"u{user_id}" if user_id is not None else f"v{ip}\0{user_agent}"
    key = throttle_key(visitor, target.url)
    if not throttle.allow(key, conf.THROTTLE_SECONDS):
        stats.incr(stats.SKIP_THROTTLED)
        return None
    stats.incr(stats.TRACKED)
    return PageViewEvent(
        event_id=new_event_id(),
        timestamp=time.time(),
        target=target,
        ip_address=stored_ip(ip),
        user_agent=user_agent,
        visitor_hash="",
        client_ip=ip,
        throttle_key=key,
    )


def _not_a_visit(request: HttpRequest) -> str | None:
    """Why a request is not a person's visit: a prefetch or prerender the browser made on
    its own, or (when the site honours them) a Do Not Track or Global Privacy Control
    signal."""
    meta = request.META
    purpose = f"{meta.get('HTTP_SEC_PURPOSE', '')} {meta.get('HTTP_PURPOSE', '')}"
    if "prefetch" in purpose.lower() or meta.get("HTTP_X_MOZ", "").lower() == "prefetch":
        return stats.SKIP_PREFETCH
    if conf.RESPECT_DNT:
        if meta.get("HTTP_DNT", "").strip() == "1":
            return stats.SKIP_DNT
        if meta.get("HTTP_SEC_GPC", "").strip() == "1":
            return stats.SKIP_GPC
    return None


def is_excluded_page(request: HttpRequest) -> bool:
    """Whether the page itself is never counted: an excluded path, the package's own
    views, the admin."""
    path = request.path
    if path.startswith(excluded_paths()):
        return True
    match = request.resolver_match
    # The package's own endpoints (stats API, counters, beacon) read views; they are none.
    if match is not None and match.func.__module__.startswith(OWN_VIEWS):
        return True
    return conf.EXCLUDE_ADMIN and (
        path.startswith(ADMIN_PREFIX) or (match is not None and "admin" in match.namespaces)
    )


def _is_excluded_visitor(request: HttpRequest, ip: str | None) -> bool:
    # META, not request.headers: building that mapping costs more than the rest here.
    if conf.EXCLUDE_AJAX and request.META.get(AJAX_HEADER) == "XMLHttpRequest":
        return True
    networks = excluded_networks()
    if networks and ip is not None:
        address = ipaddress.ip_address(ip)
        return any(address in network for network in networks)
    return False


def _target(request: HttpRequest, response: HttpResponseBase) -> Target:
    context = getattr(response, "context_data", None)
    return page_target(request, context.get("object") if isinstance(context, dict) else None)


def page_target(request: HttpRequest, context_object: Any = None) -> Target:
    """What the page of ``request`` shows, as the middleware records it;
    ``context_object`` is the ``object`` of its template context, if any."""
    match = request.resolver_match
    view_name = (match.view_name if match else "")[:VIEW_NAME_MAX_LENGTH]
    model, field, value = _viewed_object(request, context_object, match)
    return Target(stored_url(_url(request)), view_name, model, field, value)


def _url(request: HttpRequest) -> str:
    return page_url(request.path, request.META.get("QUERY_STRING", ""))


def page_url(path: str, query: str) -> str:
    """The path (trailing slash per PAGEVIEW_TRAILING_SLASH), plus the query parameters
    the site asked to keep (sorted, so that one page has one URL); every other parameter is
    dropped. The raw query string is parsed here, capped, rather than through request.GET,
    which raises on too many fields."""
    path = normalize_path(path)
    keep = conf.TRACK_QUERY_STRING
    if not keep or not query:
        return path
    pairs = parse_qsl(query[:QUERY_STRING_MAX_LENGTH], keep_blank_values=True)
    kept = sorted((k, v) for k, v in pairs if k in keep)
    return f"{path}?{urlencode(kept)}" if kept else path


def _viewed_object(
    request: HttpRequest, context_object: Any, match: ResolverMatch | None
) -> tuple[str, str, str]:
    """(model label, lookup field, value) of the object the page shows, or empty strings.

    In order: what the view set on the request; the object a class-based view put in its
    context (already loaded: no query); the view's model with a pk/id/slug URL argument.
    """
    obj = getattr(request, REQUEST_OBJECT_ATTRIBUTE, None)
    if obj is None:
        obj = context_object
    if isinstance(obj, Model) and obj.pk is not None:
        return model_label(type(obj)), PK, stored_text(str(obj.pk), OBJECT_ID_MAX_LENGTH)
    if match is None:
        return "", "", ""
    view_class = getattr(match.func, "view_class", None)
    model = view_model(view_class)
    if model is None:
        return "", "", ""
    kwargs = match.kwargs
    pk_kwarg = getattr(view_class, "pk_url_kwarg", "pk")
    for name in (pk_kwarg, "pk", "id"):
        if name in kwargs:
            return model_label(model), PK, stored_text(str(kwargs[name]), OBJECT_ID_MAX_LENGTH)
    slug_kwarg = getattr(view_class, "slug_url_kwarg", "slug")
    if slug_kwarg in kwargs:
        field = getattr(view_class, "slug_field", "slug")
        return model_label(model), field, stored_text(str(kwargs[slug_kwarg]), SLUG_MAX_LENGTH)
    return "", "", ""


def _loaded_user_id(request: HttpRequest) -> Any:
    """The user's id if authentication already loaded the user, else None.

    Touching ``request.user`` ourselves would load the session (a query, and under ASGI a
    SynchronousOnlyOperation), so only a user the view already loaded is used.
    """
    for attribute in ("_cached_user", "_acached_user"):
        user = request.__dict__.get(attribute)
        if user is not None and getattr(user, "is_authenticated", False):
            return user.pk
    return None
