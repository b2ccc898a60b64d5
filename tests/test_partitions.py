"""Raw rows in monthly partitions (PostgreSQL): the conversion keeps every row and loses
or doubles no view drained meanwhile, months are made ahead and dropped when expired,
a view of a month without a partition lands in the default one, and exactly once holds
on the partitioned table.

The tests run on the second database (tests/settings.py, ``pageviews``) through
PAGEVIEW_DATABASE, and put its raw table back as migrated afterwards, so that no other
test meets a partitioned table. PostgreSQL only: skipped elsewhere.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction
from django.db.models import Sum
from django.test import override_settings

from django_pageviews import partitions
from django_pageviews.checks import check_raw_partitions
from django_pageviews.events import PK, PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.recorder import flush
from django_pageviews.routers import ROUTER_PATH
from django_pageviews.storage import write_batch
from tests.conftest import distinct_visitors, wsgi_get
from tests.settings import PAGEVIEWS_ALIAS

OTHER = PAGEVIEWS_ALIAS
on_postgresql = pytest.mark.skipif(
    connections[OTHER].vendor != "postgresql",
    reason="monthly partitions are PostgreSQL's: run with DATABASE_URL=postgres://...",
)
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", OTHER])

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
TARGET = Target("/p/", "", "", PK, "")


def event(when: datetime, event_id: str | None = None) -> PageViewEvent:
    return PageViewEvent(event_id or uuid.uuid4().hex, when.timestamp(), TARGET, None, "", "")


def raw_count() -> int:
    return PageView.objects.count()


def daily_total() -> int:
    return PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0


@pytest.fixture
def partitioning() -> Iterator[None]:
    """PAGEVIEW_DATABASE and PAGEVIEW_RAW_PARTITIONS on; afterwards the app's tables on
    that database made again by its migrations (a plain raw table)."""
    with override_settings(
        DATABASE_ROUTERS=[ROUTER_PATH], PAGEVIEW_DATABASE=OTHER, PAGEVIEW_RAW_PARTITIONS=True
    ):
        try:
            yield
        finally:
            connections[OTHER].close()
            call_command("migrate", "django_pageviews", "zero", database=OTHER, verbosity=0)
            call_command("migrate", "django_pageviews", database=OTHER, verbosity=0)


def kind_of_raw_table() -> str:
    with connections[OTHER].cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [partitions.table()]
        )
        return str(cursor.fetchone()[0])


@on_postgresql
def test_converting_keeps_every_row_and_exactly_once(partitioning: None) -> None:
    old = [event(NOW - timedelta(days=70)), event(NOW - timedelta(days=40)), event(NOW)]
    assert write_batch("before", old) == 3
    ids = sorted(PageView.objects.values_list("id", flat=True))
    assert partitions.convert(ahead=2, now=NOW) == 3
    assert kind_of_raw_table() == "p"
    assert partitions.months() == [date(2026, m, 1) for m in (9, 10, 11, 12)] + [date(2027, 1, 1)]
    assert sorted(PageView.objects.values_list("id", flat=True)) == ids
    assert partitions.convert(ahead=2, now=NOW) is None  # once
    # New rows get new ids; a copy of a stored event (a shipment delivered twice) is
    # still refused by (event_id, timestamp) and skipped; a replayed batch changes nothing.
    again = event(NOW, old[2].event_id)
    assert write_batch("after", [event(NOW), again]) == 1
    assert write_batch("after", [event(NOW)]) == 0
    assert raw_count() == 4
    assert min(PageView.objects.filter(pk__gt=ids[-1]).values_list("id", flat=True)) > ids[-1]
    assert daily_total() == 4
    with connections[OTHER].cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
            "to_regclass(%s) AND contype IN ('p', 'u') ORDER BY contype",
            [partitions.table()],
        )
        keys = [row[0] for row in cursor.fetchall()]
    assert keys == ['PRIMARY KEY (id, "timestamp")', 'UNIQUE (event_id, "timestamp")']


@on_postgresql
def test_a_view_of_a_month_without_partition_goes_to_default_and_is_moved(
    partitioning: None,
) -> None:
    partitions.convert(ahead=0, now=NOW)
    later = NOW + timedelta(days=75)  # January 2027: no partition yet
    assert write_batch("future", [event(later), event(NOW)]) == 2
    assert partitions.rows_in_default() == 1
    report = partitions.maintain(ahead=3, now=later)
    assert report.created == [partitions.partition_name(date(2027, m, 1)) for m in (1, 2, 3, 4)]
    assert report.moved_from_default == 1
    assert report.in_default == 0
    assert raw_count() == 2
    assert partitions.maintain(ahead=3, now=later).created == []


@on_postgresql
def test_expired_months_are_dropped_and_the_totals_kept(partitioning: None) -> None:
    views = [event(NOW - timedelta(days=100)), event(NOW - timedelta(days=100)), event(NOW)]
    write_batch("views", views)
    partitions.convert(ahead=1, now=NOW)
    report = partitions.maintain(ahead=1, keep_days=60, now=NOW)
    assert report.dropped == [partitions.partition_name(date(2026, 8, 1))]
    assert raw_count() == 1
    assert daily_total() == 3
    assert PageView.get_view_count(url="/p/") == 3


@on_postgresql
def test_the_command_converts_then_maintains_and_reports_the_default(partitioning: None) -> None:
    write_batch("now", [event(datetime.now(UTC))])
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="--convert"):
        call_command("pageviews_partitions", stdout=out)
    call_command("pageviews_partitions", "--convert", "--ahead=1", stdout=out, stderr=err)
    assert "Partitioned the raw page views by month (1 rows copied)." in out.getvalue()
    assert "2 monthly partitions" in out.getvalue()
    assert err.getvalue() == ""
    write_batch("far", [event(datetime.now(UTC) + timedelta(days=400))])
    out, err = StringIO(), StringIO()
    with override_settings(PAGEVIEW_RAW_RETENTION_DAYS=30):
        call_command("pageviews_partitions", "--ahead=1", stdout=out, stderr=err)
    assert "Created" not in out.getvalue()
    assert err.getvalue().startswith("1 raw page views are in the default partition")
    assert raw_count() == 2


@on_postgresql
def test_a_drain_during_the_conversion_loses_and_doubles_nothing(
    partitioning: None, redis_url: str
) -> None:
    """Views in Redis are drained while the conversion holds the table: the drain's
    transaction waits for the conversion's commit and writes into the partitioned table."""
    n = 40
    for headers in distinct_visitors(n // 2):
        assert wsgi_get("/plain/", **headers).status_code == 200
    assert flush() == n // 2  # written before: copied by the conversion
    for headers in distinct_visitors(n)[n // 2 :]:
        assert wsgi_get("/plain/", **headers).status_code == 200
    locked = threading.Event()
    failures: list[BaseException] = []

    def convert() -> None:
        try:
            with transaction.atomic(using=OTHER), connections[OTHER].cursor() as cursor:
                cursor.execute(f"LOCK TABLE {partitions.table()} IN ACCESS EXCLUSIVE MODE")
                locked.set()
                time.sleep(1.5)  # the drain starts meanwhile and waits for the table
                partitions.convert()
        except BaseException as exc:  # reported by the test
            failures.append(exc)
            locked.set()
        finally:
            connections[OTHER].close()

    converting = threading.Thread(target=convert)
    converting.start()
    assert locked.wait(10)
    started = time.monotonic()
    assert flush() == n // 2
    waited = time.monotonic() - started
    converting.join()
    assert failures == []
    assert waited > 0.5  # it did wait for the conversion
    assert kind_of_raw_table() == "p"
    assert raw_count() == n
    assert PageView.objects.values("event_id").distinct().count() == n
    assert daily_total() == n
    assert flush() == 0


def test_the_command_needs_the_setting_and_postgresql() -> None:
    with pytest.raises(CommandError, match="PAGEVIEW_RAW_PARTITIONS = True"):
        call_command("pageviews_partitions")
    with override_settings(PAGEVIEW_RAW_PARTITIONS=True):
        if connections["default"].vendor == "postgresql":
            assert check_raw_partitions() == []
        else:
            with pytest.raises(CommandError, match="need PostgreSQL"):
                call_command("pageviews_partitions")
            assert [e.id for e in check_raw_partitions()] == ["django_pageviews.E051"]
