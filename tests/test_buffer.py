"""The in-process buffer and its writer thread, against the real database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from django.db import DataError, OperationalError, ProgrammingError, connection
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.buffer import MAX_ATTEMPTS, buffer
from django_pageviews.db_errors import is_data_error
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily, SkippedDaily
from django_pageviews.recorder import flush
from tests.conftest import BROWSER_UA, asgi_requests, distinct_visitors, wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_SECONDS = 30.0


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until the writer thread has done its work (a bound, not a speed claim)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the writer thread did not flush"
        time.sleep(0.02)


def stored() -> int:
    return PageView.objects.count()


@override_settings(PAGEVIEW_BATCH_SIZE=10, PAGEVIEW_MAX_BUFFER_AGE=3600)
def test_writer_flushes_when_a_batch_is_full() -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(25)])
    wait_for(lambda: stored() == 20)
    assert buffer.pending_count() == 5
    assert flush() == 5
    assert stored() == 25


@override_settings(PAGEVIEW_BATCH_SIZE=1000, PAGEVIEW_BUFFER_TIMEOUT=0.2)
def test_writer_flushes_when_the_oldest_view_is_old_enough() -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
    wait_for(lambda: stored() == 3)
    assert buffer.pending_count() == 0


@override_settings(PAGEVIEW_MAX_BUFFER_SIZE=5, PAGEVIEW_BATCH_SIZE=5, PAGEVIEW_MAX_BUFFER_AGE=3600)
def test_full_buffer_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    # Keep the writer from draining while we fill the buffer.
    with buffer.commit_lock:
        before = stats.snapshot().get(stats.DROPPED, 0)
        for headers in distinct_visitors(8):
            wsgi_get("/plain/", **headers)
        assert stats.snapshot().get(stats.DROPPED, 0) - before == 3
    assert "buffer full" in caplog.text
    flush()
    assert stored() == 5


def _rename_rollup_table(to_broken: bool) -> None:
    table = PageViewDaily._meta.db_table
    old, new = (table, table + "_away") if to_broken else (table + "_away", table)
    with connection.cursor() as cursor:
        qn = connection.ops.quote_name
        cursor.execute(f"ALTER TABLE {qn(old)} RENAME TO {qn(new)}")


@override_settings(PAGEVIEW_BATCH_SIZE=1000, PAGEVIEW_MAX_BUFFER_AGE=3600)
def test_database_error_keeps_the_batch_for_the_next_flush(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = stats.snapshot().get(stats.FLUSH_ERROR, 0)
    _rename_rollup_table(to_broken=True)
    try:
        responses = asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(4)])
        assert [r.status_code for r in responses] == [200] * 4
        with caplog.at_level(logging.ERROR, logger="django_pageviews.buffer"):
            assert flush() == 0
        assert "Writing 4 page views failed" in caplog.text
        assert stats.snapshot().get(stats.FLUSH_ERROR, 0) - before == 1
        assert buffer.last_error is not None
        assert buffer.pending_count() == 4
        assert stored() == 0  # the raw rows were rolled back with the failed upsert
        # Requests keep working and keep being buffered while the database fails.
        assert wsgi_get("/plain/", **distinct_visitors(5)[4]).status_code == 200
    finally:
        _rename_rollup_table(to_broken=False)
    flush()  # the writer thread may retry first: either way all five end up stored once
    assert buffer.last_error is None
    assert stored() == 5
    assert PageViewDaily.objects.get().views == 5


def test_a_view_that_cannot_be_stored_is_dropped_and_counted_alone() -> None:
    """A poison view (here an event id that is no UUID) fails its batch every time: the
    batch is split after a few attempts, the good views are written, the poison dropped."""
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
    target = Target("/plain/", "", "", "", "")
    buffer.add(PageViewEvent("not-a-uuid", time.time(), target, None, BROWSER_UA, ""))
    before = stats.snapshot().get(stats.SKIP_INVALID, 0)
    for _ in range(2 * MAX_ATTEMPTS):
        flush()
    assert buffer.pending_count() == 0
    assert stored() == 3
    assert PageViewDaily.objects.get().views == 3
    assert stats.snapshot().get(stats.SKIP_INVALID, 0) - before == 1
    assert flush() == 0  # writes the invalid count
    assert SkippedDaily.objects.get().requests == 1


@pytest.mark.parametrize(
    ("exc", "data"),
    [
        (DataError("value too long"), True),
        (ValueError("badly formed hexadecimal UUID string"), True),
        (OperationalError(1366, "Incorrect string value: '\\xF0\\x9F...'"), True),
        (OperationalError(2006, "Server has gone away"), False),  # waited out
        (OperationalError("connection refused"), False),
        (ProgrammingError("relation does not exist"), False),  # a deploy: waited out
    ],
)
def test_which_failures_are_the_data_s_fault(exc: Exception, data: bool) -> None:
    assert is_data_error(exc) is data


# The writer in a test whose transaction is rolled back (conftest.py's _fresh_pipeline):
# what it commits on its own connection would outlive the test.


@pytest.mark.django_db(transaction=False)
def test_a_rolled_back_test_holds_the_writers_age_flush() -> None:
    assert wsgi_get("/admin/login/").status_code == 200  # a skip count, for the writer
    due = buffer._due()
    assert due is not None and due > 60


def test_a_committing_test_keeps_the_writers_age_flush() -> None:
    assert wsgi_get("/admin/login/").status_code == 200
    due = buffer._due()
    assert due is not None and due <= 1.0
