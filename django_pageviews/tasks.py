"""Celery tasks, with the names the user's guide schedules and routes.

Tasks are plain functions underneath (``.run``); results are ignored, acknowledgement is
late (a task lost with its worker is delivered again, and replays are harmless), and stale
database connections are closed around each run as Django's request cycle would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any, TypeVar

from celery import shared_task
from django.db import close_old_connections, connections

from .conf import conf
from .manual import record_view

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
    from .drain import drain_redis

    return asdict(drain_redis(time_budget=conf.FLUSH_TIME_BUDGET))


@shared_task(name="django_pageviews.tasks.cleanup_old_buffer_data", **TASK_OPTIONS)
@_with_fresh_connections
def cleanup_old_buffer_data() -> dict[str, int]:
    """Replay or acknowledge claims older than BUFFER_TIMEOUT; trim old batch ids."""
    from .drain import cleanup

    return asdict(cleanup())


# Records one view from user code (the middleware never sends this per request):
# buffer_page_view(url, view_name=None, content_type_id=None, object_id=None,
#                  ip_address=None, user_agent=None, session_key=None)
buffer_page_view = shared_task(name="django_pageviews.tasks.buffer_page_view", **TASK_OPTIONS)(
    _with_fresh_connections(record_view)
)
