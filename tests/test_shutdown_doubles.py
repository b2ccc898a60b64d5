"""A shipment whose Redis reply timed out, then a shutdown with Redis stopped: counted
exactly once, whether or not the shipment had landed, on the thread and asyncio batchers,
with and without raw rows.

The reply times out for real: the redis-server is frozen (SIGSTOP) while the shipment is
sent, the client gives up after PAGEVIEW_REDIS_SOCKET_TIMEOUT, and the server, thawed,
runs the script it had received."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db.models import Sum
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.aio.batcher import aclose, get_batcher
from django_pageviews.aio.client import get_client as get_loop_client
from django_pageviews.manual import make_event, record_view
from django_pageviews.models import PageView, PageViewDaily, UnsettledShipment
from django_pageviews.recorder import flush
from django_pageviews.redis import buffer
from django_pageviews.redis.buffer import Keys, Shipment
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup
from django_pageviews.redis.scripts import SHIP, ship
from django_pageviews.redis.sync_batcher import batcher
from django_pageviews.redis.unsettled import DB_MARKER, KEPT
from django_pageviews.shutdown import flush_all
from tests.conftest import run_async
from tests.processes import wait_for
from tests.redis_server import PrivateRedis

pytestmark = [pytest.mark.django_db(transaction=True)]

VIEWS = 10
URL = "/doubles/"


@pytest.fixture(params=[True, False], ids=["raw", "counts-only"])
def store_raw(request: pytest.FixtureRequest, private_redis: PrivateRedis) -> Iterator[bool]:
    with override_settings(
        PAGEVIEW_STORE_RAW=request.param,
        PAGEVIEW_REDIS_SOCKET_TIMEOUT=0.2,
        PAGEVIEW_SHIP_INTERVAL=30,  # the test ships, not the batcher's own timer
        PAGEVIEW_THROTTLE_SECONDS=0,
    ):
        yield bool(request.param)


def pid(server: PrivateRedis) -> int:
    assert server.process is not None
    return server.process.pid


def admin(server: PrivateRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


def stored() -> int:
    return int(PageViewDaily.objects.filter(url=URL).aggregate(n=Sum("views"))["n"] or 0)


class Frozen:
    """The redis-server stopped (SIGSTOP) inside the block, thawed after it."""

    def __init__(self, server: PrivateRedis) -> None:
        self.pid = pid(server)

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def landed(server: PrivateRedis, shipment: Shipment) -> None:
    """Wait until the thawed server has run the script the client gave up on."""
    client = admin(server)
    try:
        wait_for(
            lambda: client.get(Keys.shard(shipment.shard).sent(shipment.shipment_id)) == "1",
            "the timed-out shipment to land",
        )
        assert int(client.hget(Keys.shard(shipment.shard).dims, "t") or 0) == VIEWS
    finally:
        client.close()


def stop_keeping_data(server: PrivateRedis) -> None:
    """Stop Redis so that it comes back with what it held (an RDB snapshot on disk)."""
    client = admin(server)
    client.save()
    client.close()
    server.stop()


def settle_and_count(server: PrivateRedis, store_raw: bool) -> None:
    assert UnsettledShipment.objects.count() == 1
    server.start()
    out = io.StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    assert json.loads(out.getvalue())["unsettled_shipments"] == {"shipments": 1, "views": VIEWS}
    cleanup()
    assert UnsettledShipment.objects.count() == 0
    flush()
    assert stored() == VIEWS
    assert PageView.objects.count() == (VIEWS if store_raw else 0)
    client = admin(server)  # nothing left behind in Redis (no batch failed or set aside)
    assert client.zcard(Keys.current().claims) == 0
    assert client.hlen(Keys.current().pending) == 0
    assert int(client.hget(Keys.current().dims, "t") or 0) == 0
    client.close()


def test_thread_batcher_landed_then_shutdown(private_redis: PrivateRedis, store_raw: bool) -> None:
    admin(private_redis).script_load(SHIP)
    for _ in range(VIEWS):
        record_view(URL)
    kept = stats.snapshot().get(KEPT, 0)
    get_client().ping()  # connected first: the request times out, not the handshake
    with Frozen(private_redis):
        batcher.ship_all()
    shipment = batcher.retry
    assert shipment is not None  # the client timed out: outcome unknown
    landed(private_redis, shipment)
    stop_keeping_data(private_redis)
    flush_all()  # the process's shutdown, with Redis stopped
    assert stats.snapshot().get(KEPT, 0) - kept == VIEWS
    assert stored() == 0  # not spilled: it may be (here it is) in Redis
    settle_and_count(private_redis, store_raw)


def test_asyncio_batcher_landed_then_shutdown(private_redis: PrivateRedis, store_raw: bool) -> None:
    admin(private_redis).script_load(SHIP)

    async def main() -> None:
        loop_batcher = get_batcher()
        for _ in range(VIEWS):
            loop_batcher.submit(make_event(URL))
        await get_loop_client().ping()
        with Frozen(private_redis):
            await loop_batcher.ship_all()
        shipment = loop_batcher.retry
        assert shipment is not None
        await asyncio.to_thread(landed, private_redis, shipment)
        stop_keeping_data(private_redis)
        await aclose()  # the loop's shutdown, with Redis stopped

    run_async(main)
    assert stored() == 0
    settle_and_count(private_redis, store_raw)


def killed_while_frozen(server: PrivateRedis) -> None:
    """SIGKILL the frozen server: what it had received never ran, and it comes back
    empty."""
    assert server.process is not None
    server.process.kill()
    os.kill(server.process.pid, signal.SIGCONT)
    server.process.wait(timeout=20)
    server.process = None


@pytest.mark.parametrize("kind", ["thread", "asyncio"])
def test_never_landed_is_written_once_and_a_late_copy_is_refused(
    private_redis: PrivateRedis, store_raw: bool, kind: str
) -> None:
    admin(private_redis).script_load(SHIP)
    shipment: Any = None
    if kind == "thread":
        for _ in range(VIEWS):
            record_view(URL)
        get_client().ping()
        os.kill(pid(private_redis), signal.SIGSTOP)
        batcher.ship_all()  # times out: outcome unknown
        shipment = batcher.retry
        killed_while_frozen(private_redis)
        flush_all()
    else:

        async def main() -> Shipment | None:
            loop_batcher = get_batcher()
            for _ in range(VIEWS):
                loop_batcher.submit(make_event(URL))
            await get_loop_client().ping()
            os.kill(pid(private_redis), signal.SIGSTOP)
            await loop_batcher.ship_all()
            retry = loop_batcher.retry
            killed_while_frozen(private_redis)
            await aclose()
            return retry

        shipment = run_async(main)
    assert shipment is not None
    assert stored() == 0
    settle_and_count(private_redis, store_raw)  # Redis came back empty: written here
    client = admin(private_redis)
    assert client.get(Keys.current().sent(shipment.shipment_id)) == DB_MARKER
    keys, args = shipment.script_args()
    assert ship(keys=keys, args=args, client=client)[0] == -1  # a late copy cannot land
    client.close()
    cleanup()
    assert flush() == 0
    assert stored() == VIEWS


def test_a_shipment_refused_at_every_attempt_spills_as_before(private_redis: PrivateRedis) -> None:
    # Connection refused: provably never sent, so the fallback is safe (and immediate).
    private_redis.stop()
    with override_settings(PAGEVIEW_THROTTLE_SECONDS=0):
        for _ in range(VIEWS):
            record_view(URL)
        spilled = stats.snapshot().get("spilled_redis_down", 0)
        batcher.ship_all()
        # Never in Redis: it goes to the fallback (now, or when the shipper thread next
        # finds the breaker open), never kept as a shipment of unknown outcome.
        assert not batcher.maybe_sent
        flush_all()
    assert UnsettledShipment.objects.count() == 0
    assert stored() == VIEWS
    assert stats.snapshot().get("spilled_redis_down", 0) - spilled == VIEWS


def test_a_kept_shipment_waits_while_redis_is_full(private_redis: PrivateRedis) -> None:
    with override_settings(PAGEVIEW_REDIS_SOCKET_TIMEOUT=0.2, PAGEVIEW_THROTTLE_SECONDS=0):
        for _ in range(VIEWS):
            record_view(URL)
        get_client().ping()
        os.kill(pid(private_redis), signal.SIGSTOP)
        batcher.ship_all()
        killed_while_frozen(private_redis)
        flush_all()
    assert UnsettledShipment.objects.count() == 1
    private_redis.start()
    client = admin(private_redis)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # SET NX of the marker is refused: nothing decided
    errors = stats.snapshot().get(stats.REDIS_ERROR, 0)
    cleanup()
    assert stats.snapshot().get(stats.REDIS_ERROR, 0) - errors == 1
    assert UnsettledShipment.objects.count() == 1
    assert stored() == 0
    client.config_set("maxmemory", 0)
    client.close()
    cleanup()
    assert UnsettledShipment.objects.count() == 0
    assert stored() == VIEWS


def test_the_flush_command_settles_a_kept_shipment(
    private_redis: PrivateRedis, store_raw: bool
) -> None:
    """pageviews_flush is django_pageviews.flush: it settles what a shutdown kept, too."""
    admin(private_redis).script_load(SHIP)
    for _ in range(VIEWS):
        record_view(URL)
    get_client().ping()
    os.kill(pid(private_redis), signal.SIGSTOP)
    batcher.ship_all()  # times out: outcome unknown
    killed_while_frozen(private_redis)
    flush_all()
    assert UnsettledShipment.objects.count() == 1
    private_redis.start()  # empty: the shipment never ran
    out = io.StringIO()
    call_command("pageviews_flush", stdout=out)
    assert UnsettledShipment.objects.count() == 0
    assert stored() == VIEWS
    assert out.getvalue().endswith("Wrote 0 page views.\n")  # written by the settling


def test_a_lost_reply_is_resent_to_its_shard_and_a_kept_shipment_settles_there(
    private_redis: PrivateRedis, store_raw: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With three shards: a shipment whose reply was lost is resent to the shard it went
    to (its ``sent:`` marker is there), and counts once; one whose reply was lost at
    shutdown is kept in the database with its shard, and cleanup finds its marker there
    (settled from shard 0 it would be written to the database as well: twice). The
    asyncio batcher: its own task sleeps SHIP_INTERVAL (30 s) and ships nothing meanwhile."""
    admin(private_redis).script_load(SHIP)

    async def reply_lost(loop_batcher: Any, shard: int) -> Shipment:
        """VIEWS views shipped while Redis is frozen: landed, with no reply."""
        for _ in range(VIEWS):
            loop_batcher.submit(make_event(URL))
        with Frozen(private_redis):
            await loop_batcher.ship_all()
        shipment: Shipment | None = loop_batcher.retry
        assert shipment is not None and shipment.shard == shard
        await asyncio.to_thread(landed, private_redis, shipment)
        return shipment

    async def main() -> None:
        loop_batcher = get_batcher()
        loop_batcher.submit(make_event(URL))
        await loop_batcher.ship_all()  # the first shipment, to shard 0, registers three
        monkeypatch.setattr(buffer, "_turns", itertools.count(1))  # the next: shard 1, 2
        await get_loop_client().ping()
        await reply_lost(loop_batcher, 1)
        await asyncio.to_thread(wait_for, loop_batcher.breaker.allows, "a resend let through")
        await loop_batcher.ship_all()  # the resend: a duplicate to shard 1's marker
        assert loop_batcher.retry is None
        await reply_lost(loop_batcher, 2)
        stop_keeping_data(private_redis)
        await aclose()  # shutdown with Redis stopped: kept, with its shard

    with override_settings(PAGEVIEW_BUFFER_SHARDS=3):
        run_async(main)
        record = UnsettledShipment.objects.get()
        assert json.loads(record.payload)["shard"] == 2
        private_redis.start()
        client = admin(private_redis)
        assert int(client.hget(Keys.shard(1).dims, "t") or 0) == VIEWS  # once
        client.close()
        cleanup()  # the marker is in shard 2: Redis has the views
        assert UnsettledShipment.objects.count() == 0
        assert stored() == 0
        flush()
    assert stored() == 1 + 2 * VIEWS
    assert PageView.objects.count() == (1 + 2 * VIEWS if store_raw else 0)
