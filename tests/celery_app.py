"""The Celery app of the tests' subprocess workers; PAGEVIEW_TEST_BEAT_SECONDS shortens
the beat schedule."""

from __future__ import annotations

import os

from celery import Celery

from django_pageviews.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
_seconds = os.environ.get("PAGEVIEW_TEST_BEAT_SECONDS")
app.conf.beat_schedule = {
    name: {**entry, "schedule": float(_seconds)} if _seconds else entry
    for name, entry in BEAT_SCHEDULE.items()
}
