"""What the original django-pageviews 0.2.6 did with a view on its Redis path, as the
baseline of the drain, Redis memory, memory and scaling scenarios (0.2.6 is not on PyPI here, so its
figures could not otherwise come from the same run as ours); bench/baseline.py does the
same for the request overhead.

Its Celery task ``buffer_page_view`` LPUSHed one JSON object per view (every field the
middleware found, the session key included, and the time) to the Redis list
``pageview_buffer`` and asked the list's length; ``process_pageview_buffer`` RPOPed up to
BATCH_SIZE of them, one round trip and one ``json.loads`` each, read each view's content
type with its own query (``ContentType.objects.get(id=...)``), and bulk-created the batch
with ``timestamp=timezone.now()``: ``drain`` repeats that batch until the list is empty,
without the Celery task dispatch between batches. The rows go to the package's own
PageView table (the fields are 0.2.6's; it adds a unique ``event_id``, and keeps 3 of
0.2.6's 5 other indexes), so the database's share of a row is comparable, not equal.

The list lives in the benchmark's Redis (bench.common.redis_url) under KEY; the
scenarios remove it after use.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

KEY = "pageview_buffer"
BATCH_SIZE = 100  # 0.2.6's PAGEVIEW_BATCH_SIZE default


def fields(event: Any, content_type_id: int | None) -> dict[str, Any]:
    """What 0.2.6's middleware sent ``buffer_page_view`` for a view (a PageViewEvent): the
    full client address (0.2.6 anonymised nothing), the object's integer key, and a session
    key (it saved a session for every visitor; 32 characters, one per visitor here)."""
    target = event.target
    ip = event.client_ip or event.ip_address
    session = hashlib.blake2b(f"{ip} {event.user_agent}".encode(), digest_size=16).hexdigest()
    return {
        "url": target.url,
        "view_name": target.view_name or None,
        "content_type_id": content_type_id,
        "object_id": int(target.value) if content_type_id else None,
        "ip_address": ip,
        "user_agent": event.user_agent,
        "session_key": session,
    }


def encode(sent: dict[str, Any]) -> str:
    """The list element ``buffer_page_view`` made of them: with the time it ran."""
    return json.dumps(sent | {"timestamp": time.time()})


def content_type_id(event: Any) -> int | None:
    """The id of the viewed object's content type (Django set up), as 0.2.6's middleware
    sent it; None for a view of no object."""
    from django.contrib.contenttypes.models import ContentType

    if not event.target.model:
        return None
    app_label, model = event.target.model.split(".")
    return int(ContentType.objects.get_by_natural_key(app_label, model).pk)


def push(client: Any, view: str) -> None:
    """What ``buffer_page_view`` sent Redis per view: LPUSH, then LLEN (it started the
    drain task once BATCH_SIZE views were waiting)."""
    client.lpush(KEY, view)
    client.llen(KEY)


def pop_batch(client: Any) -> list[dict[str, Any]]:
    """Up to BATCH_SIZE views, one RPOP each, decoded."""
    views = []
    for _ in range(BATCH_SIZE):
        raw = client.rpop(KEY)
        if not raw:
            break
        views.append(json.loads(raw))
    return views


def write_batch(views: list[dict[str, Any]]) -> None:
    """``process_pageview_buffer``'s database side: a content type query per view of an
    object, then one bulk INSERT."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from django_pageviews.models import PageView

    rows = []
    for view in views:
        content_type = None
        if view["content_type_id"]:
            content_type = ContentType.objects.get(id=view["content_type_id"])
        rows.append(
            PageView(
                url=view["url"],
                view_name=view["view_name"],
                content_type=content_type,
                object_id=view["object_id"],
                ip_address=view["ip_address"],
                user_agent=view["user_agent"],
                session_key=view["session_key"],
                timestamp=timezone.now(),
            )
        )
    if rows:
        PageView.objects.bulk_create(rows)


def drain(client: Any, progress: Callable[[int, int], None] | None = None) -> int:
    """``process_pageview_buffer`` until the list is empty; the views written.
    ``progress(batches, views)`` after each batch, as ``drain_redis`` calls it."""
    written = batches = 0
    while views := pop_batch(client):
        write_batch(views)
        written += len(views)
        batches += 1
        if progress is not None:
            progress(batches, written)
    return written


def prepared_drain() -> Callable[..., int]:
    """A drain with its Redis connection open (0.2.6 made its client at import); it takes
    ``drain``'s ``progress``."""
    client = connect()
    return lambda progress=None: drain(client, progress)


def connect() -> Any:
    """A client of the benchmark's Redis, connected (0.2.6 made its client at import)."""
    import redis

    from bench.common import redis_url

    client = redis.Redis.from_url(redis_url())
    client.ping()
    return client


def fill(client: Any, views: int, pages: int) -> None:
    """0.2.6's list, as its buffer task left it (realistic article views over ``pages``
    pages, one JSON element per view), built afresh (Django set up)."""
    from bench.common import realistic_event

    client.delete(KEY)
    content_type = content_type_id(realistic_event(0))
    for start in range(0, views, 1_000):
        with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 1_000, views)):
                pipe.lpush(KEY, encode(fields(realistic_event(i % pages), content_type)))
            pipe.execute()
