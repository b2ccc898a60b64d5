"""Recording a view from user code: a task, or a view that counts by hand."""

from __future__ import annotations

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


def record_view(
    url: str,
    view_name: str | None = None,
    content_type_id: int | None = None,
    object_id: int | str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    session_key: str | None = None,
) -> PageViewEvent:
    """Record one view now (no throttling: the caller decided it counts).

    ``session_key`` is accepted for compatibility and not stored: a session key is a
    credential, and a page-view table is no place for credentials.
    """
    model = field = value = ""
    if content_type_id is not None and object_id is not None:
        model_class = ContentType.objects.get_for_id(content_type_id).model_class()
        if model_class is not None:
            value = stored_text(str(object_id), OBJECT_ID_MAX_LENGTH)
            model, field = model_label(model_class), PK
    ip = parse_ip(ip_address)
    event = PageViewEvent(
        event_id=uuid.uuid4().hex,
        timestamp=time.time(),
        # Stored as a tracked URL is: trailing slash normalised, capped, separators encoded.
        target=Target(stored_url(normalize_url(url)), view_name or "", model, field, value),
        ip_address=stored_ip(ip),
        user_agent=stored_text((user_agent or "")[:USER_AGENT_MAX_LENGTH]),
        visitor_hash="",  # made by the batch, with the day's salt
        client_ip=ip,
    )
    record(event, ship_now=True)
    return event


def increment_view_count(
    obj: Model,
    ip_address: str | None = None,
    user_agent: str | None = None,
    session_key: str | None = None,
    request: HttpRequest | None = None,
) -> bool:
    """Record a view of ``obj`` unless the same visitor (user id, else session key, else IP
    address) viewed it within PAGEVIEW_THROTTLE_SECONDS; True when it counted."""
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
    # Hashed: neither an address nor a session key (a credential) goes to Redis or a cache.
    key = throttle_key(visitor, f"{model_label(type(obj))}:{obj.pk}")
    if not allow_once_everywhere(key, conf.THROTTLE_SECONDS):
        stats.incr(stats.SKIP_THROTTLED)
        return False
    content_type = ContentType.objects.get_for_model(obj)
    url = request.path if request is not None else _absolute_url(obj)
    record_view(
        url=url,
        content_type_id=content_type.pk,
        object_id=obj.pk,
        ip_address=ip_address,
        user_agent=user_agent,
    )
    return True


def _absolute_url(obj: Model) -> str:
    get_url = getattr(obj, "get_absolute_url", None)
    return str(get_url()) if callable(get_url) else ""


aincrement_view_count = sync_to_async(increment_view_count)
