"""The Redis drain under database faults (issue #10, items 3, 4 and 10): an outage is
waited out and sets nothing aside; a record the database refuses for its data is isolated,
counted as invalid and set aside, while every other view of its batch is written; a
flusher stopped mid-split leaves nothing that cleanup counts twice; a raw event stored
twice never fails a batch. Real Redis, real database, faults injected in the database."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Sum

from django_pageviews import storage
from django_pageviews.events import current_day
from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch, SkippedDaily
from django_pageviews.redis import aside as redis_aside
from django_pageviews.redis.buffer import Keys, status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis
from django_pageviews.redis.scripts import ship
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.storage import write_batch
from tests.conftest import BROWSER_UA, asgi_requests, distinct_visitors
from tests.db_faults import allow_all, read_only, refuse_url
from tests.models import Article
from tests.processes import running, subprocess_env, wait_for
from tests.test_storage import PAGE, event

pytestmark = pytest.mark.django_db(transaction=True)

POISON = "/long/poison/"
ADDRESS, AGENT = "203.0.113.9", "SecretAgent/1.0"
OLD_MAX_ATTEMPTS = 5  # failures after which older versions set a whole batch aside


def total() -> int:
    return PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0


def daily(url: str) -> int:
    return PageViewDaily.objects.filter(url=url).aggregate(n=Sum("views"))["n"] or 0


def invalid() -> int:
    rows = SkippedDaily.objects.filter(reason="invalid")
    return rows.aggregate(n=Sum("requests"))["n"] or 0


def retry_aside() -> str:
    out = StringIO()
    call_command("pageviews_flush", "--retry-aside", stdout=out)
    return out.getvalue()


@pytest.fixture
def poison_rollup() -> Iterator[None]:
    """The database refuses the daily row of POISON (a trigger), until allow_all()."""
    refuse_url(PageViewDaily, POISON)
    yield
    allow_all(PageViewDaily)


def send_views(good_pages: int = 4, poison: int = 0) -> int:
    """Views of ``good_pages`` pages and ``poison`` views of POISON; the good views sent."""
    visitors = distinct_visitors(3)
    article = Article.objects.create(title="A", slug="a")
    requests = [("GET", f"/pages/{n}/", h) for n in range(good_pages) for h in visitors]
    requests += [("GET", f"/articles/{article.pk}/", h) for h in visitors]
    requests += [("GET", POISON, h) for h in distinct_visitors(poison)]
    assert {r.status_code for r in asgi_requests(requests)} == {200}
    return 3 * good_pages + 3


def test_an_outage_is_waited_out_and_sets_nothing_aside(redis_url: str) -> None:
    good = send_views()
    client = get_client()
    with read_only():
        assert drain_redis(time_budget=None).failed == 1
        for _ in range(OLD_MAX_ATTEMPTS + 1):
            assert cleanup(stale_after=0).failed == 1
        report = status(client)
        assert (report["claimed_batches"], report["batches_set_aside"]) == (1, 0)
        assert PageView.get_view_count() == good  # still live, from the claim
    assert total() == 0
    assert redis_aside.aside_ids(client) == []
    result = cleanup(stale_after=0)
    assert (result.replayed, result.failed) == (1, 0)
    assert drain_redis(time_budget=None).views == 0
    assert total() == good
    assert PageView.objects.count() == good
    assert PageView.get_view_count() == good
    assert invalid() == 0


def test_a_poison_record_is_isolated_counted_and_replayed_once(
    redis_url: str, poison_rollup: None
) -> None:
    good = send_views(poison=2)
    client = get_client()
    result = drain_redis(time_budget=None)
    assert (result.failed, result.views) == (0, good)
    assert total() == good
    assert daily(POISON) == 0
    assert invalid() == 2
    assert PageView.objects.count() == good + 2  # raw rows: only the daily row is refused
    aside = {"batches": 1, "count_fields": 1, "raw_events": 0, "views": 2}
    assert redis_aside.aside_status(client) == aside
    assert PageView.get_view_count(url=POISON) == 0  # set aside: not live either
    assert status(client)["claimed_batches"] == 0
    # Not fixed yet: it stays set aside, counted as invalid once.
    assert "Replayed 0 set-aside records (0 views); 1 still refused" in retry_aside()
    assert invalid() == 2
    allow_all(PageViewDaily)
    assert "Replayed 1 set-aside records (2 views); 0 still refused" in retry_aside()
    assert (total(), daily(POISON), invalid()) == (good + 2, 2, 0)
    assert "Replayed 0 set-aside records (0 views)" in retry_aside()
    assert (total(), daily(POISON), invalid()) == (good + 2, 2, 0)
    assert redis_aside.aside_status(client)["batches"] == 0
    assert PageView.objects.count() == good + 2


class Crash(BaseException):
    """The flusher dies here: nothing after it runs (as under SIGKILL)."""


@pytest.mark.parametrize("fixed_before_cleanup", [False, True], ids=["still-refused", "fixed"])
@pytest.mark.parametrize("crash", ["after-a-part", "before-parking"])
def test_a_flusher_stopped_mid_split_then_cleanup_is_exact(
    redis_url: str,
    poison_rollup: None,
    monkeypatch: pytest.MonkeyPatch,
    crash: str,
    fixed_before_cleanup: bool,
) -> None:
    good = send_views(good_pages=9, poison=2)
    client = get_client()

    def dies_after_a_part(batch_id: str, *args: Any, **kwargs: Any) -> int | None:
        written = storage.write_once(batch_id, *args, **kwargs)
        if "." in batch_id:  # a part, written: the flusher dies before the next one
            raise Crash
        return written

    def dies(*args: Any) -> None:
        raise Crash

    with monkeypatch.context() as m:
        if crash == "after-a-part":
            m.setattr("django_pageviews.redis.splitting.write_once", dies_after_a_part)
        else:
            m.setattr("django_pageviews.redis.splitting.park", dies)
        with pytest.raises(Crash):
            drain_redis(time_budget=None)
    assert status(client)["claimed_batches"] == 1
    if fixed_before_cleanup:  # a whole write would now succeed: it must not happen
        allow_all(PageViewDaily)
    result = cleanup(stale_after=0)
    assert (result.replayed, result.failed) == (1, 0)
    assert status(client)["claimed_batches"] == 0
    # Every view once: written, or counted as invalid and set aside.
    assert total() + invalid() == good + 2
    assert invalid() == redis_aside.aside_status(client)["views"]
    assert daily(POISON) + invalid() == 2
    assert total() - daily(POISON) == good
    assert cleanup(stale_after=0).replayed == 0
    allow_all(PageViewDaily)
    retry_aside()
    assert (total(), daily(POISON), invalid()) == (good + 2, 2, 0)
    assert PageView.objects.count() == good + 2
    assert redis_aside.aside_ids(client) == []


def lock_waits() -> int:
    """Transactions of this database waiting for a row lock."""
    if connection.vendor == "postgresql":
        sql = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    else:
        # InnoDB refreshes INNODB_TRX only when nobody read it for 0.1 s: polled faster, it
        # would show the same (empty) picture for ever.
        time.sleep(0.15)
        sql = (
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
            "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor == "sqlite", reason="holding one row locked needs row locks")
def test_a_flusher_killed_mid_split_then_cleanup_is_exact(
    redis_url: str, poison_rollup: None, tmp_path: Path
) -> None:
    """A real flusher process, SIGKILLed while it sets the poison record aside (another
    transaction holds the row its invalid count goes to), after the split began."""
    good = send_views(good_pages=9, poison=2)
    client = get_client()
    blocker = connections.create_connection(DEFAULT_DB_ALIAS)
    blocker.set_autocommit(False)
    log = tmp_path / "flusher.log"
    try:
        table = connection.ops.quote_name(SkippedDaily._meta.db_table)
        with blocker.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (day, reason, requests) VALUES (%s, %s, 0)",
                [current_day(), "invalid"],
            )
        flusher = [sys.executable, "-m", "django", "pageviews_flush"]
        with running(flusher, subprocess_env(redis_url), log) as process:
            wait_for(lambda: lock_waits() > 0, "the flusher to wait", explain=log.read_text)
            process.kill()
            process.wait()
    finally:
        blocker.rollback()
        blocker.close()
    wait_for(lambda: lock_waits() == 0, "the killed flusher's transaction to end")
    # Killed mid-split: the split began, the poison record was not yet set aside.
    marks = ProcessedBatch.objects.exclude(batch_id__contains=".")
    assert marks.filter(batch_id__endswith="~split").count() == 1
    assert not ProcessedBatch.objects.filter(batch_id__endswith="~invalid").exists()
    assert status(client)["claimed_batches"] == 1
    result = cleanup(stale_after=0)
    assert (result.replayed, result.failed) == (1, 0)
    assert (total(), invalid(), daily(POISON)) == (good, 2, 0)
    assert redis_aside.aside_status(client)["views"] == 2
    allow_all(PageViewDaily)
    retry_aside()
    assert (total(), daily(POISON), invalid()) == (good + 2, 2, 0)
    assert PageView.objects.count() == good + 2


def test_a_raw_event_already_stored_is_skipped_with_its_count(redis_url: str) -> None:
    """A shipment that reached Redis although its reply was lost, and was also written by
    the in-process path at shutdown: the Redis copy is skipped, the batch is written."""
    events = [event(PAGE) for _ in range(6)]
    client = get_client()
    keys, args = build_shipment(events, Counter()).script_args()
    ship(keys=keys, args=args, client=client)
    assert write_batch("written-at-shutdown", events) == 6
    others = [event(PAGE._replace(url="/other/")) for _ in range(3)]
    keys, args = build_shipment(others, Counter()).script_args()
    ship(keys=keys, args=args, client=client)
    result = drain_redis(time_budget=None)
    assert (result.failed, result.views) == (0, 3)
    assert (total(), daily(PAGE.url), daily("/other/")) == (9, 6, 3)
    assert PageView.objects.count() == 9


def test_one_event_shipped_twice_into_one_batch_counts_once(redis_url: str) -> None:
    events = [event(PAGE) for _ in range(4)]
    client = get_client()
    for _ in range(2):  # two shipment ids: the retry is not recognised as one
        keys, args = build_shipment(events, Counter()).script_args()
        ship(keys=keys, args=args, client=client)
    result = drain_redis(time_budget=None)
    assert (result.failed, result.views) == (0, 4)
    assert total() == 4
    assert PageView.objects.count() == 4


def test_unreadable_records_are_logged_without_address_or_user_agent(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = get_client()
    unreadable = ["e1", "not a time", "/u/", "", "", "", "", ADDRESS, AGENT, ""]
    client.rpush(Keys.current().events, json.dumps(unreadable))
    assert drain_redis(time_budget=None).failed == 0
    assert "/u/" in caplog.text
    assert ADDRESS not in caplog.text
    assert AGENT not in caplog.text
    assert invalid() == 1


def test_a_refused_raw_event_is_set_aside_and_logged_without_user_agent(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    refuse_url(PageView, POISON)  # the raw row refused: the view itself is counted
    try:
        asgi_requests([("GET", POISON, {"user-agent": f"{BROWSER_UA} {AGENT}"})])
        assert drain_redis(time_budget=None).failed == 0
        assert redis_aside.aside_status(get_client())["raw_events"] == 1
        assert (daily(POISON), invalid()) == (1, 0)
    finally:
        allow_all(PageView)
    assert POISON in caplog.text
    assert AGENT not in caplog.text
    assert "Replayed 1 set-aside records (0 views)" in retry_aside()
    assert PageView.objects.filter(url=POISON).count() == 1
    assert (daily(POISON), invalid()) == (1, 0)
