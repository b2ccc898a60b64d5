"""The writer: one transaction per batch, adding upserts, replays skipped."""

from __future__ import annotations

import time
import uuid
from datetime import date

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_pageviews.events import PK, PageViewEvent, Target, local_day
from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
from django_pageviews.resolve import resolve_targets
from django_pageviews.storage import target_hash, write_batch
from django_pageviews.upsert import upsert_rollups
from tests.models import Article

pytestmark = pytest.mark.django_db


def event(target: Target, timestamp: float | None = None) -> PageViewEvent:
    return PageViewEvent(
        event_id=uuid.uuid4().hex,
        timestamp=time.time() if timestamp is None else timestamp,
        target=target,
        ip_address="192.0.2.0",
        user_agent="ua",
        visitor_hash="0" * 32,
    )


PAGE = Target("/page/", "page", "", "", "")


def test_batch_writes_raw_rows_and_daily_totals() -> None:
    assert write_batch("b1", [event(PAGE) for _ in range(3)]) == 3
    assert PageView.objects.filter(url="/page/").count() == 3
    daily = PageViewDaily.objects.get()
    assert (daily.url, daily.view_name, daily.views, daily.content_type_id) == (
        "/page/",
        "page",
        3,
        None,
    )
    assert daily.target_hash == target_hash(None, "", "/page/", "page")
    assert ProcessedBatch.objects.get().views == 3


def test_replayed_batch_changes_nothing() -> None:
    events = [event(PAGE) for _ in range(4)]
    assert write_batch("same-id", events) == 4
    assert write_batch("same-id", events) == 0
    assert PageView.objects.count() == 4
    assert PageViewDaily.objects.get().views == 4
    assert ProcessedBatch.objects.count() == 1


def test_upsert_adds_to_existing_totals() -> None:
    write_batch("first", [event(PAGE) for _ in range(2)])
    write_batch("second", [event(PAGE) for _ in range(5)])
    assert PageViewDaily.objects.get().views == 7


@override_settings(TIME_ZONE="Pacific/Kiritimati")  # UTC+14: the local day differs
def test_days_are_the_sites_local_days() -> None:
    # 2026-01-01 12:00 UTC is 2026-01-02 02:00 in Kiritimati.
    ts = 1767268800.0
    write_batch("tz", [event(PAGE, ts)])
    assert PageViewDaily.objects.get().day == date(2026, 1, 2)


def test_many_targets_in_one_batch() -> None:
    targets = [Target(f"/p/{i}/", "", "", "", "") for i in range(450)]
    write_batch("wide", [event(t) for t in targets for _ in range(2)])
    assert PageViewDaily.objects.count() == 450
    assert set(PageViewDaily.objects.values_list("views", flat=True)) == {2}


def lookups(context: CaptureQueriesContext) -> list[str]:
    """The queries run, but savepoints (a lookup inside a caller's transaction has one)."""
    return [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def test_slug_and_pk_targets_resolve_in_one_query_per_model_field() -> None:
    a = Article.objects.create(title="A", slug="a")
    b = Article.objects.create(title="B", slug="b")
    ContentType.objects.get_for_model(Article)  # warm the content type cache
    targets = {
        Target("/a/", "", "tests.article", "slug", "a"),
        Target("/b/", "", "tests.article", "slug", "b"),
        Target("/x/", "", "tests.article", "slug", "missing"),
        Target("/b2/", "", "tests.article", PK, str(b.pk)),
        Target("/gone/", "", "nosuch.model", PK, "1"),
    }
    with CaptureQueriesContext(connection) as context:
        resolved = resolve_targets(targets)
    assert len(lookups(context)) == 1
    ct = ContentType.objects.get_for_model(Article).pk
    assert resolved == {
        Target("/a/", "", "tests.article", "slug", "a"): (ct, str(a.pk)),
        Target("/b/", "", "tests.article", "slug", "b"): (ct, str(b.pk)),
        Target("/x/", "", "tests.article", "slug", "missing"): (None, ""),
        Target("/b2/", "", "tests.article", PK, str(b.pk)): (ct, str(b.pk)),
        Target("/gone/", "", "nosuch.model", PK, "1"): (None, ""),
    }


def test_events_already_stored_are_skipped_and_not_counted_twice() -> None:
    """A raw event written twice (a shipment delivered twice) never fails its batch."""
    first = [event(PAGE) for _ in range(3)]
    assert write_batch("a", first) == 3
    assert write_batch("b", [first[0], first[0], event(PAGE), first[2]]) == 1
    assert PageView.objects.count() == 4
    assert PageViewDaily.objects.get().views == 4


def test_stored_events_are_looked_up_only_when_the_unique_index_refuses_a_batch() -> None:
    """The lookup of stored event ids is skipped while no event is stored: the first try
    commits; a batch holding one stored event is refused whole, then written again with
    the lookup, and nothing of the refused try remains."""
    first = [event(PAGE) for _ in range(3)]
    with CaptureQueriesContext(connection) as context:
        assert write_batch("a", first) == 3
    assert not [q for q in lookups(context) if q.upper().startswith("SELECT EVENT_ID")]
    with CaptureQueriesContext(connection) as context:
        assert write_batch("b", [event(PAGE), first[1], event(PAGE)]) == 2
    assert [q for q in lookups(context) if q.upper().startswith("SELECT EVENT_ID")]
    assert PageView.objects.count() == 5
    assert PageViewDaily.objects.get().views == 5
    assert ProcessedBatch.objects.filter(batch_id="b").get().views == 2


def test_a_duplicate_whose_count_travels_apart_is_taken_off_once() -> None:
    """On the Redis path the counts travel apart from the raw events: the count of a
    second copy is taken off the daily row written before."""
    e = event(PAGE)
    day = local_day(e.timestamp)
    assert write_batch("first", [e], {(day, PAGE): 1}) == 1
    write_batch("copy-event", [e], {})
    write_batch("copy-count", [], {(day, PAGE): 1})
    assert PageViewDaily.objects.get().views == 1
    assert PageView.objects.count() == 1


def test_the_adding_upsert_never_cuts_a_value_to_fit_its_column() -> None:
    # The database refuses a value longer than its column (a poison record, set aside by
    # the drain) or, where lengths are not enforced (SQLite), keeps it whole: never a
    # shortened value that would no longer match its hash.
    url = "/" + "x" * 700  # URL_MAX_LENGTH + 1
    row = (date(2026, 1, 1), "f" * 32, None, "", url, "", 1)
    try:
        with transaction.atomic():
            upsert_rollups([row], "default")
    except DatabaseError:
        assert connection.vendor != "sqlite"
        assert not PageViewDaily.objects.exists()
    else:
        assert connection.vendor == "sqlite"
        assert list(PageViewDaily.objects.values_list("url", flat=True)) == [url]
