"""Redis in trouble, for real: full (maxmemory with noeviction), batches at the largest
sizes the checks accept, restored from an old snapshot, restarted empty. Counts are exact:
every view shipped is written once, or is named as lost or parked."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.core.management import call_command
from django.db.models import Sum
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.buffer import buffer
from django_pageviews.checks import MAX_BATCH_SIZE, check_settings
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.redis.buffer import Keys, claim, raw_event_count, read_claim, status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis, write_claim
from django_pageviews.redis.restore import RESTORED, replay_restored, restored_status
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import BROWSER_UA
from tests.processes import wait_for
from tests.redis_server import SERVERS, PrivateRedis, redis62_binary

pytestmark = pytest.mark.django_db(transaction=True)

MAX_SHIP_BATCH_SIZE = 5000  # what check E019 accepts at most


def counter(name: str) -> int:
    return stats.snapshot().get(name, 0)


def stored(url_prefix: str = "") -> int:
    rows = PageViewDaily.objects.filter(url__startswith=url_prefix)
    return rows.aggregate(total=Sum("views"))["total"] or 0


def view(url: str) -> PageViewEvent:
    return PageViewEvent(
        uuid.uuid4().hex, time.time(), Target(url, "", "", "", ""), None, BROWSER_UA, ""
    )


def ship(n: int, url: str) -> None:
    """``n`` views of ``url`` through the real thread batcher, shipped now."""
    for _ in range(n):
        batcher.submit(view(url))
    batcher.ship_all()
    assert batcher.retry is None and not batcher.queue


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[PrivateRedis]:
    """A private Redis: ``request.param`` is (binary, maxmemory, policy), or just binary."""
    param = getattr(request, "param", None)
    binary, maxmemory, policy = param if isinstance(param, tuple) else (param, None, "noeviction")
    private = PrivateRedis(
        maxmemory=maxmemory,
        policy=policy,
        binary=redis62_binary() if binary == "6.2" else None,
    )
    private.start()
    try:
        version = raw_client(private).info("server")["redis_version"]
        assert version.startswith("6.2.") if binary == "6.2" else int(version.split(".")[0]) >= 7
        with override_settings(
            PAGEVIEW_ASYNC_PROCESSING=True,
            PAGEVIEW_REDIS_URL=private.url,
            PAGEVIEW_THROTTLE_SECONDS=0,
            PAGEVIEW_STORE_RAW=True,
        ):
            yield private
            batcher.discard()
    finally:
        private.close()


def raw_client(server: PrivateRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


# (a) A full Redis: shipments are refused whole, the drain still works, shipping resumes.


@pytest.mark.parametrize(
    "server",
    [pytest.param((b.values[0], "6mb", "noeviction"), id=b.id, marks=b.marks) for b in SERVERS],
    indirect=True,
)
# Spilled views wait in the in-process buffer until the test writes them (buffer.flush()).
@override_settings(
    PAGEVIEW_SHIP_BATCH_SIZE=50, PAGEVIEW_BATCH_SIZE=1000, PAGEVIEW_MAX_BUFFER_AGE=3600
)
def test_a_full_redis_is_drained_and_shipping_resumes(server: PrivateRedis) -> None:
    client = raw_client(server)
    before = {n: counter(n) for n in (stats.SHIPPED, stats.REDIS_ERROR, "spilled_redis_down")}
    sent = 0
    # Fill Redis with real shipments (long URLs, raw events on) until it refuses one.
    while counter(stats.REDIS_ERROR) == before[stats.REDIS_ERROR]:
        for _ in range(50):
            batcher.submit(view(f"/full/{sent}/" + "x" * 400))
            sent += 1
        batcher.ship_all()
        assert sent < 100_000, "Redis never filled up"
    # Refused by a full Redis: provably not in Redis (its first write was refused), so it
    # goes to the fallback at once, unlike a shipment whose outcome is unknown.
    assert not batcher.maybe_sent
    # The refused shipment's own bytes may be what tipped Redis over; lower the limit
    # under what Redis holds, so that Redis is full for every command that follows.
    memory = client.info("memory")
    if memory["used_memory"] <= memory["maxmemory"]:
        client.config_set("maxmemory", memory["used_memory"] - 64 * 1024)
    for _ in range(30):  # views keep coming while Redis is full
        batcher.submit(view("/while-full/"))
        sent += 1
    batcher.ship_all()
    shipped = counter(stats.SHIPPED) - before[stats.SHIPPED]
    assert counter(stats.REDIS_ERROR) > before[stats.REDIS_ERROR]
    # Refused whole: Redis holds exactly the shipments it accepted, nothing of the others.
    assert int(client.hget(Keys.current().dims, "t") or 0) == shipped
    assert raw_event_count(client, Keys.current().events) == shipped

    result = drain_redis(time_budget=None)  # the drain works on a full Redis
    # (The shipper thread may land its refused shipment as soon as the drain frees room.)
    assert result.views >= shipped
    assert stored() == result.views

    def resumed() -> bool:
        batcher.ship_all()
        return batcher.retry is None and not batcher.queue

    wait_for(resumed, "shipping to resume once the drain freed memory")
    drain_redis(time_budget=None)
    buffer.flush()  # views spilled to the in-process path while Redis was full
    spilled = counter("spilled_redis_down") - before["spilled_redis_down"]
    assert counter(stats.SHIPPED) - before[stats.SHIPPED] + spilled == sent
    assert stored() == sent
    assert PageView.objects.count() == sent  # raw rows: each view once (unique event ids)
    client.close()


# (b) The largest batches the checks accept, raw events on.


@override_settings(PAGEVIEW_BATCH_SIZE=MAX_BATCH_SIZE, PAGEVIEW_SHIP_BATCH_SIZE=MAX_SHIP_BATCH_SIZE)
def test_the_largest_batches_the_checks_accept_are_counted_exactly(
    server: PrivateRedis,
) -> None:
    assert check_settings() == []
    with override_settings(PAGEVIEW_BATCH_SIZE=MAX_BATCH_SIZE + 1):
        assert [e.id for e in check_settings()] == ["django_pageviews.E002"]
    # More raw events in one claim than Lua's unpack takes (about 8,000), and full
    # shipments of the largest size.
    n = 2 * MAX_SHIP_BATCH_SIZE
    for i in range(n):
        batcher.submit(view(f"/big/{i % 3000}/"))
    batcher.ship_all()
    assert batcher.retry is None
    result = drain_redis(time_budget=None)
    assert (result.batches, result.views) == (1, n)
    assert stored("/big/") == n
    assert PageView.objects.count() == n
    client = get_client()
    keys = Keys.current()
    assert (client.hlen(keys.pending), client.llen(keys.events), client.zcard(keys.claims)) == (
        0,
        0,
        0,
    )


# (c) Redis restored from an old snapshot, or restarted empty.


@pytest.mark.parametrize("server", SERVERS, indirect=["server"])
def test_a_redis_restored_from_an_old_snapshot_is_not_drained_twice(
    server: PrivateRedis,
) -> None:
    client = get_client()
    restored_before = counter(RESTORED)
    ship(10, "/a/")
    assert drain_redis(time_budget=None).views == 10
    ship(3, "/c/")
    c1 = claim(client, 100)  # written after the snapshot
    ship(4, "/d/")
    c2 = claim(client, 100)  # its flusher dies: never written
    assert c1 and c2
    ship(7, "/b/")  # pending in the snapshot, drained after it
    raw_client(server).save()  # the snapshot
    write_claim(client, read_claim(client, c1))
    assert drain_redis(time_budget=None).views == 7
    ship(5, "/e/")
    assert drain_redis(time_budget=None).views == 5
    ship(3, "/i/")
    in_flight = read_claim(client, claim(client, 100) or "")  # being written when Redis fails
    ship(2, "/f/")  # shipped after the snapshot, not drained: lost with Redis
    assert stored() == 25

    server.restart()  # back from the old snapshot
    assert claim(client, 100) is None  # a drain running on: refused, nothing claimed twice
    ship(2, "/h/")  # new views, shipped before the next drain looks: parked with /b/
    assert drain_redis(time_budget=None).views == 0  # /b/ is parked, not drained again
    assert counter(RESTORED) == restored_before + 1
    [group] = restored_status(client)
    assert (group["views"], group["count_fields"], group["raw_events"]) == (9, 2, 9)
    assert status(client)["restored_groups"] == 1  # shown by pageviews_status
    assert stored() == 25
    # Live totals: the database plus the open claim never written (c1 is in the database).
    assert PageView.get_view_count() == 29
    assert PageView.get_view_count(url="/b/") == 7
    result = cleanup(stale_after=0)  # the open claims of the restored Redis
    assert (result.acknowledged, result.replayed) == (1, 1)
    assert (stored("/a/"), stored("/b/"), stored("/c/"), stored("/d/"), stored("/e/")) == (
        10,
        7,
        3,
        4,
        5,
    )
    assert stored("/f/") == 0
    assert PageView.get_view_count() == 29
    # The batch that was being written when Redis failed is committed now: counted once.
    assert write_claim(client, in_flight) == 3
    assert PageView.get_view_count() == 32

    ship(6, "/g/")  # the restored Redis works on, with nothing parked again
    assert drain_redis(time_budget=None).views == 6
    assert drain_redis(time_budget=None).views == 0
    assert counter(RESTORED) == restored_before + 1
    assert len(restored_status(client)) == 1
    assert PageView.objects.count() == 38  # raw rows: each once

    # An operator hands the group back (pageviews_flush --replay-restored): the raw events
    # tell which views the database lacks (the two of /h/), and only those are written.
    out = io.StringIO()
    call_command("pageviews_flush", "--replay-restored", stdout=out)
    assert "Replayed restored views: 1 batches, 2 views." in out.getvalue()
    assert replay_restored() == []
    assert restored_status(client) == []
    assert (stored("/b/"), stored("/h/"), stored("/i/"), stored()) == (7, 2, 3, 40)
    assert PageView.objects.count() == 40
    assert PageView.get_view_count() == 40


@pytest.mark.parametrize("server", SERVERS, indirect=["server"])
def test_a_redis_restarted_empty_loses_only_what_was_not_drained(
    server: PrivateRedis,
) -> None:
    restored_before = counter(RESTORED)
    ship(10, "/a/")
    assert drain_redis(time_budget=None).views == 10
    ship(4, "/b/")  # shipped, not drained yet
    server.restart()  # no persistence: Redis comes back empty
    ship(5, "/c/")
    assert drain_redis(time_budget=None).views == 5
    assert (stored("/a/"), stored("/b/"), stored("/c/")) == (10, 0, 5)
    assert restored_status(get_client()) == []
    assert counter(RESTORED) == restored_before
    ship(3, "/d/")
    assert drain_redis(time_budget=None).views == 3
    assert stored() == 18


@override_settings(PAGEVIEW_STORE_RAW=False)
def test_counts_only_a_restored_snapshot_is_parked_and_replayed_only_on_purpose(
    server: PrivateRedis,
) -> None:
    client = get_client()
    ship(5, "/b/")
    raw_client(server).save()
    assert drain_redis(time_budget=None).views == 5
    server.restart()
    assert drain_redis(time_budget=None).views == 0
    [group] = restored_status(client)
    assert (group["views"], group["raw_events"]) == (5, 0)
    assert stored("/b/") == 5
    assert PageView.get_view_count(url="/b/") == 5
    # Without raw events nothing tells counted views apart: a replay writes them all.
    assert len(replay_restored([group["group"]])) == 1
    assert cleanup().replayed == 1
    assert stored("/b/") == 10
