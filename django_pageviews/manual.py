"""Recording a view from user code (a task, a view that wants to count by hand)."""

from __future__ import annotations

import time
import uuid

from django.contrib.contenttypes.models import ContentType

from .events import PK, USER_AGENT_MAX_LENGTH, PageViewEvent, Target, local_day
from .objects import model_label
from .privacy import parse_ip, stored_ip, visitor_hash
from .recorder import record


def record_view(
    url: str,
    view_name: str | None = None,
    content_type_id: int | None = None,
    object_id: int | str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    session_key: str | None = None,
) -> PageViewEvent:
    """Record one view now (no throttling: the caller decided it counts)."""
    model = field = value = ""
    if content_type_id is not None and object_id is not None:
        model_class = ContentType.objects.get_for_id(content_type_id).model_class()
        if model_class is not None:
            model, field, value = model_label(model_class), PK, str(object_id)
    now = time.time()
    ip = parse_ip(ip_address)
    ua = (user_agent or "")[:USER_AGENT_MAX_LENGTH]
    event = PageViewEvent(
        event_id=uuid.uuid4().hex,
        timestamp=now,
        target=Target(url, view_name or "", model, field, value),
        ip_address=stored_ip(ip),
        user_agent=ua,
        visitor_hash=visitor_hash(ip, ua, local_day(now)),
        session_key=session_key,
    )
    record(event, ship_now=True)
    return event
