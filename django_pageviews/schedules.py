"""The Celery beat schedule and task routes of the user's guide, to merge into an app.

The beat schedule and task routes of the user's guide, to merge into a Celery app::

from django_pageviews.schedules import BEAT_SCHEDULE, TASK_ROUTES

app.conf.beat_schedule = {**app.conf.beat_schedule, **BEAT_SCHEDULE}
app.conf.task_routes = TASK_ROUTES
"""

from __future__ import annotations

from typing import Any

PROCESS_TASK = "django_pageviews.tasks.process_pageview_buffer"
CLEANUP_TASK = "django_pageviews.tasks.cleanup_old_buffer_data"
BUFFER_TASK = "django_pageviews.tasks.buffer_page_view"

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "process-pageview-buffer": {"task": PROCESS_TASK, "schedule": 60.0},
    "cleanup-old-buffer-data": {"task": CLEANUP_TASK, "schedule": 300.0},
}

# One queue for everything, as the guide's first example ...
TASK_ROUTES_SINGLE_QUEUE: dict[str, dict[str, str]] = {
    "django_pageviews.tasks.*": {"queue": "pageviews"},
}

# ... or separate queues and dedicated workers, as its performance section.
TASK_ROUTES: dict[str, dict[str, str]] = {
    BUFFER_TASK: {"queue": "pageviews-buffer"},
    PROCESS_TASK: {"queue": "pageviews-process"},
    CLEANUP_TASK: {"queue": "pageviews-process"},
}
