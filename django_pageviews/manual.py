"""Recording a view from user code: a task, or a view that counts by hand."""

from __future__ import annotations

import logging
import time
import uuid

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.http import HttpRequest

from . import stats
from .client_ip import client_ip, parse_ip
from .conf import conf
from .events import (
    OBJECT_ID_MAX_LENGTH,
    PK,
    USER_AGENT_MAX_LENGTH,
    VIEW_NAME_MAX_LENGTH,
    PageViewEvent,
    Target,
    stored_text,
    stored_url,
)
from .objects import model_label
from .paths import normalize_url
from .privacy import stored_ip, throttle_key
from .recorder import record
from .throttle import allow_once_everywhere

logger = logging.getLogger(__name__)

DELIVERY_NAMESPACE = uuid.UUID("6f1c3f0e-5d0b-4a4e-9a53-1d2b8e5f7c10")
# Longer than a Celery Redis broker's visibility timeout (1 hour by default), after which
# a task whose worker died unacknowledged is delivered again.
DELIVERY_MARKER_TTL = 86_400
DELIVERY_BATCH_PREFIX = "delivery:"


def record_view(
    url: str,
    view_name: str | None = None,
    content_type_id: int | None = None,
    object_id: int | str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    session_key: str | None = None,
) -> PageViewEvent | None:
    """Record one view (no throttling: the caller decided it counts). Never raises and
    never waits on Redis or the database: the view joins the batch like a tracked request.

    ``session_key`` is accepted for compatibility and not stored: a session key is a
    credential, and a page-view table is no place for credentials.

    The event, or None when the arguments could not make one (a URL that is None, bytes
    for text): logged and counted as skip ``error``, never raised into the caller's view.
    """
    try:
        event = make_event(url, view_name, content_type_id, object_id, ip_address, user_agent)
        record(event)
    except Exception:
        _failed("recording a view")
        return None
    return event


def record_delivery(
    delivery_id: str,
    url: str,
    view_name: str | None = None,
    content_type_id: int | None = None,
    object_id: int | str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> None:
    """Record one view once per ``delivery_id`` (a Celery task id: a task delivered again
    records nothing more), and store or ship it before returning. Raises when that fails,
    so that the task is retried with the same id instead of losing the view.

    The event id, the shipment id and the batch id all derive from ``delivery_id``: Redis
    drops a second shipment (its sent marker lives DELIVERY_MARKER_TTL seconds), and the
    in-process path writes at most one batch of that id."""
    event_id = _derived("event", delivery_id)
    event = make_event(url, view_name, content_type_id, object_id, ip_address, user_agent, event_id)
    if conf.ASYNC_PROCESSING:
        from .redis.shipping import ship_once

        ship_once(event, _derived("shipment", delivery_id), DELIVERY_MARKER_TTL)
    else:
        from .storage import write_batch

        stats.incr(stats.WRITTEN, write_batch(DELIVERY_BATCH_PREFIX + event_id, [event]))


def _derived(kind: str, delivery_id: str) -> str:
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{kind}:{delivery_id}").hex


def make_event(
    url: str,
    view_name: str | None = None,
    content_type_id: int | None = None,
    object_id: int | str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    event_id: str | None = None,
) -> PageViewEvent:
    """The event of a view recorded by hand. A content type that cannot be looked up (the
    database is down) leaves the view counted by URL and view name, and says so."""
    model = field = value = ""
    if content_type_id is not None and object_id is not None:
        try:
            model_class = ContentType.objects.get_for_id(content_type_id).model_class()
        except Exception:
            _failed("looking up a content type", stats.READ_ERROR)
            model_class = None
        if model_class is not None:
            value = stored_text(str(object_id), OBJECT_ID_MAX_LENGTH)
            model, field = model_label(model_class), PK
    ip = parse_ip(ip_address)
    return PageViewEvent(
        event_id=event_id or uuid.uuid4().hex,
        timestamp=time.time(),
        # Stored as a tracked URL is: trailing slash normalised, capped, separators encoded;
        # the view name capped as a tracked one is (a longer one failed its whole batch).
        target=Target(
            stored_url(normalize_url(url)),
            stored_text(view_name or "", VIEW_NAME_MAX_LENGTH),
            model,
            field,
            value,
        ),
        ip_address=stored_ip(ip),
        user_agent=stored_text((user_agent or "")[:USER_AGENT_MAX_LENGTH]),
        visitor_hash="",  # made by the batch, with the day's salt
        client_ip=ip,
    )


def increment_view_count(
    obj: Model,
    ip_address: str | None = None,
    user_agent: str | None = None,
    session_key: str | None = None,
    request: HttpRequest | None = None,
) -> bool:
    """Record a view of ``obj`` unless the same visitor (user id, else session key, else IP
    address) viewed it within PAGEVIEW_THROTTLE_SECONDS; True when it counted.

    Never raises into the caller's view. The answer needs one shared round trip (Redis
    ``SET NX`` in async mode, the cache's ``add`` otherwise) unless this process already
    saw the visitor; if that store fails the view counts (``throttle_error``). Anything
    else that fails is logged and counted as skip ``error`` (False).
    """
    try:
        if request is not None:
            ip_address = ip_address or client_ip(request)
            user_agent = user_agent or request.META.get("HTTP_USER_AGENT", "")
            session = getattr(request, "session", None)
            session_key = session_key or getattr(session, "session_key", None)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            visitor = f"user:{user.pk}"
        elif session_key:
            visitor = f"session:{session_key}"
        else:
            visitor = f"ip:{parse_ip(ip_address) or ''}"
        # Hashed: neither an address nor a session key (a credential) goes to Redis or a
        # cache.
        key = throttle_key(visitor, f"{model_label(type(obj))}:{obj.pk}")
        if not allow_once_everywhere(key, conf.THROTTLE_SECONDS):
            stats.incr(stats.SKIP_THROTTLED)
            return False
        content_type = ContentType.objects.get_for_model(obj)
        url = request.path if request is not None else _absolute_url(obj)
        record(make_event(url, None, content_type.pk, obj.pk, ip_address, user_agent))
    except Exception:
        _failed("increment_view_count", stats.SKIP_ERROR)
        return False
    return True


def _failed(what: str, counter: str = stats.SKIP_ERROR) -> None:
    stats.incr(counter)
    logger.exception("Page-view tracking failed (%s); the request goes on.", what)


def _absolute_url(obj: Model) -> str:
    get_url = getattr(obj, "get_absolute_url", None)
    return str(get_url()) if callable(get_url) else ""


aincrement_view_count = sync_to_async(increment_view_count)
