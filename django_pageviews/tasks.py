"""Celery tasks, with the names the user's guide schedules and routes.

Tasks are plain functions underneath (``.run``); results are ignored, acknowledgement is
late (a task lost with its worker is delivered again, and replays are harmless: a
redelivered ``buffer_page_view`` counts once), and stale database connections are closed
around each run as Django's request cycle would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any, TypeVar

from celery import Task, shared_task
from django.db import close_old_connections, connections

from . import stats
from .conf import conf
from .manual import record_delivery

F = TypeVar("F", bound=Callable[..., Any])

TASK_OPTIONS: dict[str, Any] = {"ignore_result": True, "acks_late": True}


def _with_fresh_connections(func: F) -> F:
    """Close stale connections around the task, as a request would; but never inside a
    caller's transaction (a task called directly), which closing would break."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if any(c.in_atomic_block for c in connections.all(initialized_only=True)):
            return func(*args, **kwargs)
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return wrapper  # type: ignore[return-value]


@shared_task(name="django_pageviews.tasks.process_pageview_buffer", **TASK_OPTIONS)
@_with_fresh_connections
def process_pageview_buffer() -> dict[str, Any]:
    """Drain Redis into the database in BATCH_SIZE chunks, within the time budget."""
    from .redis.drain import drain_redis

    return asdict(drain_redis(time_budget=conf.FLUSH_TIME_BUDGET))


@shared_task(name="django_pageviews.tasks.cleanup_old_buffer_data", **TASK_OPTIONS)
@_with_fresh_connections
def cleanup_old_buffer_data() -> dict[str, int]:
    """Replay or acknowledge claims older than BUFFER_TIMEOUT; trim old batch ids."""
    from .redis.drain import cleanup

    return asdict(cleanup())


# Delays between retries of a view that could not be stored: 1, 2, 4, ... 300 s, for
# about an hour and a half in all (longer outages fail the task, which Celery logs).
RETRY_DELAYS = (1, 300)
MAX_RETRIES = 25


@shared_task(
    name="django_pageviews.tasks.buffer_page_view",
    bind=True,
    max_retries=MAX_RETRIES,
    **TASK_OPTIONS,
)
def buffer_page_view(
    self: Task,
    url: str,
    view_name: str | None = None,
    content_type_id: int | None = None,
    object_id: int | str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    session_key: str | None = None,
) -> None:
    """Record one view from user code (the middleware never sends this per request).

    Counted once per task id, however often it is delivered (acks_late redelivers a task
    whose worker died). If the view cannot be stored or shipped now, the task is retried
    with the same id. ``session_key`` is accepted for compatibility, never stored.
    """
    delivery_id = self.request.id or uuid.uuid4().hex  # called directly: no task id
    try:
        _with_fresh_connections(record_delivery)(
            delivery_id, url, view_name, content_type_id, object_id, ip_address, user_agent
        )
    except Exception as exc:
        stats.incr(stats.REDIS_ERROR if conf.ASYNC_PROCESSING else stats.FLUSH_ERROR)
        if self.request.called_directly:
            raise
        delay = min(RETRY_DELAYS[0] * 2**self.request.retries, RETRY_DELAYS[1])
        raise self.retry(exc=exc, countdown=delay) from exc
