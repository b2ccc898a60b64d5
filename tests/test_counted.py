"""``pageviews_status`` says what was counted: views written today and in the last hour,
views pending, unique visitors today and the top pages, in text and JSON, exactly."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_pageviews.counted import counted_report, views_last_hour
from django_pageviews.events import current_day
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests, distinct_visitors
from tests.history import store, store_visitors

pytestmark = pytest.mark.django_db(transaction=True)


def status(*args: str) -> str:
    out = StringIO()
    call_command("pageviews_status", *args, stdout=out)
    return out.getvalue()


def status_json() -> dict[str, Any]:
    return dict(json.loads(status("--json")))


def test_status_reports_what_was_counted_today(pipeline: str, settings: Any) -> None:
    # Only the settings fixture: mixed with override_settings it would leave the override's
    # values behind for the next tests (see test_across_processes.py).
    settings.PAGEVIEW_MAX_BUFFER_AGE = settings.PAGEVIEW_BUFFER_TIMEOUT = 3600
    settings.PAGEVIEW_THROTTLE_SECONDS = 0
    from django_pageviews.events import Target

    store(Target("/old/", "old", "", "", ""), 9, age=1)  # yesterday's: not today's
    store_visitors(age=1, n=5)
    people = distinct_visitors(3)
    asgi_requests([("GET", "/plain/", h) for h in people * 2])
    asgi_requests([("GET", "/async/", h) for h in people[:1]])
    flush()
    asgi_requests([("GET", "/plain/", h) for h in people[:2]])  # pending: not flushed
    counted = status_json()["counted"]
    assert counted == {
        "day": current_day().isoformat(),
        "views_written_today": 7,
        "views_pending": 2,
        "views_written_last_hour": 7,
        "unique_visitors_today": 3,
        # Written and pending, as get_popular_urls reads them.
        "top_pages_today": [["/plain/", 8], ["/async/", 1]],
    }
    text = status()
    assert "counted:\n" in text
    assert "  views_written_today: 7\n" in text
    assert "  unique_visitors_today: 3\n" in text
    assert "  top_pages_today:\n           8  /plain/\n           1  /async/\n" in text
    flush()
    counted = status_json()["counted"]
    assert (counted["views_written_today"], counted["views_pending"]) == (9, 0)
    assert counted["unique_visitors_today"] == 3


@override_settings(PAGEVIEW_STORE_RAW=False, PAGEVIEW_THROTTLE_SECONDS=0)
def test_counts_only_mode_has_no_last_hour(pipeline: str) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(4)])
    flush()
    counted = status_json()["counted"]
    assert counted["views_written_last_hour"] is None
    assert (counted["views_written_today"], counted["unique_visitors_today"]) == (4, 4)
    assert "  views_written_last_hour: None\n" in status()
    assert "  top_pages_today:\n           4  /plain/\n" in status()


def test_an_empty_day_reads_as_nothing() -> None:
    counted = counted_report()
    assert counted["top_pages_today"] == []
    assert (counted["views_written_today"], counted["unique_visitors_today"]) == (0, 0)
    assert "  top_pages_today: none\n" in status()


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_the_last_hour_is_the_raw_rows_of_the_last_sixty_minutes() -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
    flush()
    assert PageView.objects.count() == 3
    old = timezone.now() - timedelta(minutes=61)
    PageView.objects.filter(pk=PageView.objects.order_by("pk")[0].pk).update(timestamp=old)
    assert views_last_hour() == 2
    assert views_last_hour(time.time() + 3600 * 2) == 0
    # One COUNT over the timestamp range (the raw table's timestamp index serves it).
    with CaptureQueriesContext(connection) as queries:
        views_last_hour()
    (query,) = queries.captured_queries
    assert "COUNT(" in query["sql"].upper() and "timestamp" in query["sql"]


@override_settings(USE_TZ=False, PAGEVIEW_THROTTLE_SECONDS=0)
def test_the_last_hour_without_time_zones() -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(2)])
    flush()
    assert views_last_hour() == 2
