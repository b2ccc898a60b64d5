"""Unique visitors per day: stored exactly once per (day, visitor) in both pipelines, with
raw rows on and off, across batches, replays and concurrent writers; privacy settings
respected; old visitor rows cleaned with the batch ids."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from django_pageviews import salts, stats
from django_pageviews.events import PageViewEvent, Target, current_day, local_day
from django_pageviews.manual import increment_view_count
from django_pageviews.models import (
    DailyVisitor,
    PageViewDaily,
    ProcessedBatch,
    VisitorSalt,
    VisitorsDaily,
)
from django_pageviews.privacy import anonymous_hash
from django_pageviews.recorder import flush
from django_pageviews.redis.buffer import claim, read_claim
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import drain_redis
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.storage import trim_old_rows, write_batch
from django_pageviews.visitors import by_day, forget_old
from django_pageviews.wire import PendingFields, parse_visitor_field, visitor_field
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = Target("/page/", "page", "", "", "")
OTHER = Target("/other/", "other", "", "", "")
RAW = pytest.mark.parametrize("store_raw", [True, False], ids=["raw", "counts-only"])


def visit(
    ip: str, ua: str = "browser", target: Target = PAGE, at: float | None = None
) -> PageViewEvent:
    """A view as tracking makes it: the full address in memory, no hash yet."""
    return PageViewEvent(
        event_id=uuid.uuid4().hex,
        timestamp=time.time() if at is None else at,
        target=target,
        ip_address=None,
        user_agent=ua,
        visitor_hash="",
        client_ip=ip,
    )


def visitors_on(day: date) -> int:
    return by_day(day, day)[day]


def stored_views() -> int:
    return PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0


@RAW
@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_a_visitor_counts_once_a_day_across_batches(pipeline: str, store_raw: bool) -> None:
    """Three visitors, six views, in three separate batches (a flush each): 3 visitors."""
    with override_settings(PAGEVIEW_STORE_RAW=store_raw):
        people = distinct_visitors(3)
        rounds = [[people[0], people[1]], [people[0], people[2]], [people[0], people[1]]]
        for headers in rounds:
            for h in headers:
                assert wsgi_get("/plain/", **h).status_code == 200
            assert flush() == 2
    today = current_day()
    assert stored_views() == 6
    assert ProcessedBatch.objects.count() >= 3
    assert visitors_on(today) == 3
    assert DailyVisitor.objects.filter(day=today).count() == 3


@RAW
@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_asgi_visitors_counted_through_both_pipelines(pipeline: str, store_raw: bool) -> None:
    with override_settings(PAGEVIEW_STORE_RAW=store_raw):
        people = distinct_visitors(4)
        asgi_requests([("GET", f"/status/200/?{i}", h) for i, h in enumerate(people * 5)])
        flush()
        asgi_requests([("GET", "/async/", h) for h in people[:2]])
        flush()
    assert stored_views() == 22
    assert visitors_on(current_day()) == 4


def test_the_first_batch_of_a_day_stores_the_shared_salt() -> None:
    """A drain's events come hashed by the web process; the drain still needs the day's
    salt (for the hash of "no visitor"), read or created by the salts thread before the
    batch's transaction: inside it, on SQLite, that thread's INSERT waited for the batch's
    write lock until the busy timeout and failed, so the drain stalled and then hashed
    with a salt of its own."""
    VisitorSalt.objects.all().delete()
    salts.forget_memory()
    errors = stats.snapshot().get(stats.SALT_ERROR, 0)
    hashed = visit("203.0.113.7")._replace(visitor_hash=uuid.uuid4().hex, client_ip=None)
    assert write_batch("first-of-day", [hashed]) == 1
    assert VisitorSalt.objects.filter(day=current_day()).count() == 1
    assert stats.snapshot().get(stats.SALT_ERROR, 0) == errors
    assert visitors_on(current_day()) == 1


def test_the_same_visitor_on_the_next_day_is_a_new_visitor() -> None:
    today = current_day()
    noon = timezone.make_aware(datetime.combine(today, datetime.min.time())).timestamp() + 43200
    tomorrow = noon + 86400
    assert write_batch("d1", [visit("192.0.2.7", at=noon), visit("192.0.2.7", at=noon)]) == 2
    assert write_batch("d2", [visit("192.0.2.7", at=tomorrow)]) == 1
    assert write_batch("d3", [visit("192.0.2.7", at=tomorrow, target=OTHER)]) == 1
    assert by_day(today, today + timedelta(1)) == {today: 1, today + timedelta(1): 1}
    # Different hashes: the day's salt keys them, nothing links the two days.
    hashes = set(DailyVisitor.objects.values_list("visitor_hash", flat=True))
    assert len(hashes) == 2


def test_a_replayed_batch_adds_no_visitor() -> None:
    events = [visit("192.0.2.1"), visit("192.0.2.2")]
    assert write_batch("r1", events) == 2
    assert write_batch("r1", events) == 0  # the batch id was written: nothing changes
    assert write_batch("r2", [visit("192.0.2.2"), visit("192.0.2.3")]) == 2
    assert visitors_on(current_day()) == 3


def test_address_and_user_agent_both_tell_visitors_apart() -> None:
    write_batch("a1", [visit("192.0.2.1", "a"), visit("192.0.2.1", "b"), visit("192.0.2.2", "a")])
    write_batch("a2", [visit("192.0.2.1", "a"), visit("2001:db8::1", "a")])
    assert visitors_on(current_day()) == 4


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_a_view_without_address_or_user_agent_is_no_visitor(pipeline: str) -> None:
    article = Article.objects.create(title="A", slug="a")
    assert increment_view_count(article)
    assert increment_view_count(article)
    assert flush() == 2
    assert visitors_on(current_day()) == 0
    assert increment_view_count(article, ip_address="192.0.2.9", user_agent="browser")
    assert increment_view_count(article, ip_address="192.0.2.9", user_agent="browser")
    assert flush() == 2
    assert visitors_on(current_day()) == 1
    assert DailyVisitor.objects.filter(visitor_hash=anonymous_hash(current_day())).count() == 0


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0, PAGEVIEW_RESPECT_DNT=True)
def test_do_not_track_requests_leave_no_visitor(pipeline: str) -> None:
    people = distinct_visitors(3)
    wsgi_get("/plain/", **people[0], dnt="1")
    wsgi_get("/plain/", **people[1], **{"sec-gpc": "1"})
    wsgi_get("/plain/", **people[2])
    flush()
    assert stored_views() == 1
    assert visitors_on(current_day()) == 1


@RAW
@override_settings(PAGEVIEW_THROTTLE_SECONDS=0, PAGEVIEW_COUNT_VISITORS=False)
def test_count_visitors_off_stores_no_visitor(pipeline: str, store_raw: bool) -> None:
    with override_settings(PAGEVIEW_STORE_RAW=store_raw):
        for h in distinct_visitors(3):
            wsgi_get("/plain/", **h)
        flush()
    assert stored_views() == 3
    assert DailyVisitor.objects.count() == 0
    assert VisitorsDaily.objects.count() == 0


@override_settings(PAGEVIEW_STORE_RAW=False)
def test_counts_only_shipments_carry_one_field_per_visitor() -> None:
    events = [visit("192.0.2.1"), visit("192.0.2.1", target=OTHER), visit("192.0.2.2")]
    shipment = build_shipment(events, __import__("collections").Counter(), take_skipped=False)
    visitor_fields = [f for f in shipment.counts if parse_visitor_field(f) is not None]
    assert len(visitor_fields) == 2
    assert shipment.raw == []
    read = PendingFields()
    for field, n in shipment.counts.items():
        read.add(field, n)
    assert sum(read.totals.values()) == 3  # the views: visitor fields are not views
    assert {d for d, _ in read.visitors} == {current_day()}


def test_raw_shipments_carry_no_visitor_field() -> None:
    shipment = build_shipment([visit("192.0.2.1")], __import__("collections").Counter(), False)
    assert [f for f in shipment.counts if parse_visitor_field(f) is not None] == []
    assert shipment.events[0].visitor_hash


@override_settings(PAGEVIEW_STORE_RAW=False, PAGEVIEW_BATCH_SIZE=2, PAGEVIEW_THROTTLE_SECONDS=0)
def test_counts_only_claims_split_visitors_and_count_them_once(redis_url: str) -> None:
    """Small claims (2 fields each): one page's count field and five visitor fields go in
    three claims, each written in its own transaction; the live total of views never
    includes the visitor fields."""
    people = distinct_visitors(5)
    pages = ["/status/200/"] * 3
    asgi_requests([("GET", page, h) for page in pages for h in people])
    asgi_requests([("GET", page, h) for page in pages for h in people[:2]])
    from django_pageviews.models import PageView

    assert PageView.get_view_count() == 21
    result = drain_redis(time_budget=None)
    assert result.views == 21
    assert result.batches == 3
    assert stored_views() == 21
    assert visitors_on(current_day()) == 5
    from django_pageviews.redis.buffer import status

    left = status(get_client())
    assert (left["pending_views"], left["pending_count_fields"], left["claimed_batches"]) == (
        0,
        0,
        0,
    )


def test_a_redis_claim_written_twice_counts_its_visitors_once(redis_url: str) -> None:
    with override_settings(PAGEVIEW_STORE_RAW=False, PAGEVIEW_THROTTLE_SECONDS=0):
        asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
    client = get_client()
    batch_id = claim(client, 100)
    assert batch_id is not None
    batch = read_claim(client, batch_id)
    assert sum(1 for f in batch.counts if parse_visitor_field(f)) == 3
    from django_pageviews.redis.drain import write_claim

    assert write_claim(client, batch) == 3
    assert write_claim(client, batch) == 0
    assert visitors_on(current_day()) == 3


def test_concurrent_batches_count_a_shared_visitor_once() -> None:
    """Batches written at once by threads (their own connections), all seeing the same
    visitors: each visitor counts once, whatever the interleaving."""
    today = current_day()
    errors: list[BaseException] = []
    people = [f"192.0.2.{i}" for i in range(40)]

    def writer(n: int) -> None:
        from django.db import connections

        try:
            for k in range(3):
                write_batch(f"t{n}-{k}", [visit(ip) for ip in reversed(people[k:])])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    for ip in people[:1]:
        write_batch("warm", [visit(ip)])  # the day's salt exists before the threads start
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert visitors_on(today) == 40
    assert DailyVisitor.objects.filter(day=today).count() == 40


def test_old_visitor_rows_are_trimmed_and_their_counts_kept() -> None:
    today = current_day()
    old = today - timedelta(days=8)
    kept = today - timedelta(days=7)
    for day in (old, kept, today):
        DailyVisitor.objects.create(day=day, visitor_hash="a" * 32)
        VisitorsDaily.objects.create(day=day, visitors=1)
    with override_settings(PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS=7):
        trim_old_rows()
    assert sorted(DailyVisitor.objects.values_list("day", flat=True)) == [kept, today]
    assert VisitorsDaily.objects.count() == 3
    assert forget_old(0) == 1
    assert list(DailyVisitor.objects.values_list("day", flat=True)) == [today]


def test_visitor_fields_round_trip() -> None:
    day = date(2026, 11, 30)
    field = visitor_field(day, "ab" * 16)
    assert parse_visitor_field(field) == (day, "ab" * 16)
    assert parse_visitor_field("2026-11-30\x1f/page/") is None
    assert local_day(time.time()) == current_day()


def test_clean_pageviews_deletes_visitor_hashes_older_than_its_days() -> None:
    from io import StringIO

    from django.core.management import call_command

    today = current_day()
    for age in (100, 91, 90, 3):
        DailyVisitor.objects.create(day=today - timedelta(days=age), visitor_hash="b" * 32)
        VisitorsDaily.objects.create(day=today - timedelta(days=age), visitors=1)
    out = StringIO()
    call_command("clean_pageviews", "--dry-run", stdout=out)
    assert DailyVisitor.objects.count() == 4
    call_command("clean_pageviews", stdout=out)
    assert "Deleted 2 visitor hashes older than 90 days." in out.getvalue()
    remaining = sorted((today - d).days for d in DailyVisitor.objects.values_list("day", flat=True))
    assert remaining == [3, 90]
    assert VisitorsDaily.objects.count() == 4


@RAW
def test_two_server_processes_count_each_visitor_once(
    pipeline: str, store_raw: bool, redis_base_url: str, tmp_path: Any
) -> None:
    """Two uvicorn processes on one database (and one Redis on the Redis path): three
    visitors, each viewing a page in both processes, count three, once each."""
    import httpx

    from tests.conftest import BROWSER_UA
    from tests.processes import (
        free_port,
        running,
        subprocess_env,
        uvicorn,
        wait_for,
        wait_until_serving,
    )

    settings = {"PAGEVIEW_THROTTLE_SECONDS": "0", "PAGEVIEW_STORE_RAW": json.dumps(store_raw)}
    env = subprocess_env(redis_base_url if pipeline == "redis" else "", **settings)
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    with (
        running(uvicorn("tests.asgi:application", ports[0]), env, tmp_path / "a.log") as a,
        running(uvicorn("tests.asgi:application", ports[1]), env, tmp_path / "b.log") as b,
    ):
        wait_until_serving(bases[0] + "/async/", a)
        wait_until_serving(bases[1] + "/async/", b)
        for visitor in ("one", "two", "three"):
            headers = {"user-agent": f"{BROWSER_UA} {visitor}"}
            for base in bases:
                assert httpx.get(base + "/plain/", headers=headers).status_code == 200
        if pipeline == "in-process":  # each process's writer thread writes within a second
            wait_for(lambda: stored_views() == 6, "both processes' views written")
    with override_settings(PAGEVIEW_STORE_RAW=store_raw):
        flush()  # the Redis path: drain what both processes shipped (stopping shipped all)
    assert PageViewDaily.objects.filter(url="/plain/").aggregate(n=Sum("views"))["n"] == 6
    assert visitors_on(current_day()) == 3
