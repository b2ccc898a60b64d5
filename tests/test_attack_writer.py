"""The in-process writer under odd but legal conditions (found attacking the merge of
issue #10).

The flush age is measured on the views' wall-clock timestamps: a clock stepped back after
a view was queued (an NTP correction, a VM resumed from a snapshot) made the writer sleep
for the size of the step, up to its hour-long idle wait, so that a SIGKILL could lose an
hour of views instead of PAGEVIEW_MAX_BUFFER_AGE. A view stamped in the future is now due.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.buffer import buffer
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.manual import record_view
from django_pageviews.models import PageView, PageViewDaily, SkippedDaily
from django_pageviews.recorder import flush
from tests.chaos.test_restart_faults import outage
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

STEP = 3000.0  # seconds the clock went back after the view was queued


@override_settings(PAGEVIEW_MAX_BUFFER_AGE=0.2)
def test_a_clock_stepped_back_does_not_hold_views_past_the_age() -> None:
    target = Target("/plain/", "plain", "", "", "")
    queued = PageViewEvent(uuid.uuid4().hex, time.time() + STEP, target, None, "ua", "")
    assert buffer.add(queued)
    wait_for(lambda: buffer.pending_count() == 0, "the writer to write the view", seconds=30)
    assert buffer.last_error is None
    assert PageView.objects.count() == 1


@override_settings(PAGEVIEW_MAX_BUFFER_SIZE=40, PAGEVIEW_BATCH_SIZE=10)
def test_an_outage_with_traffic_drops_exactly_the_overflow_and_writes_the_rest_once() -> None:
    """The database refuses writes (not for their data) while 60 views come: the buffer
    holds 40 (its bound), the 20 past it are counted as dropped, and once the database is
    back the 40 are written exactly once and the 20 are saved as skips."""
    if connection.vendor == "sqlite":  # the buffer's logic is the same on every database
        pytest.skip("SQLite's outage is a lock: each attempt waits out its 5 s timeout")
    dropped_before = stats.snapshot().get(stats.DROPPED, 0)
    with outage():
        for n in range(60):
            record_view(f"/outage/{n % 7}/", user_agent=f"ua/{n}")
        for _ in range(2):  # the writer's retries, made here: each one fails
            assert flush() == 0
            assert buffer.last_error is not None
            assert buffer.pending_count() == 40
    assert stats.snapshot().get(stats.DROPPED, 0) - dropped_before == 20
    flush()  # or the writer thread, whichever comes first
    wait_for(lambda: buffer.pending_count() == 0, "the 40 views to be written")
    assert flush() == 0  # nothing left, nothing written twice
    assert PageView.objects.count() == 40
    assert PageViewDaily.objects.aggregate(n=Sum("views"))["n"] == 40
    skipped = SkippedDaily.objects.filter(reason=stats.DROPPED).aggregate(n=Sum("requests"))
    assert skipped["n"] == 20
