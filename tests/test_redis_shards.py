"""PAGEVIEW_BUFFER_SHARDS: views spread over shards, drained and read exactly (decision 42).

Real Redis (one server here; tests/test_redis_cluster.py runs the same on a cluster), real
database. Counts are exact: every view shipped is read once while pending, while claims
are open and committed, and stored once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db import connections
from django.db.models import Sum
from django.test import override_settings
from redis.connection import Connection

from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily, UnsettledShipment
from django_pageviews.redis import buffer, drain
from django_pageviews.redis.aside import aside_ids, aside_status
from django_pageviews.redis.buffer import Keys, all_shards, read_claim, status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.restore import restored_status
from django_pageviews.redis.scripts import ship
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.redis.splitting import store
from django_pageviews.redis.sync_batcher import batcher
from django_pageviews.redis.unsettled import reconcile
from django_pageviews.reports import get_popular_urls
from tests import test_live_reads, test_metrics
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get
from tests.db_faults import allow_all, refuse_url
from tests.metrics_scrape import value
from tests.models import Article
from tests.redis_server import PrivateRedis
from tests.test_seams_restore_lists import LEFT_BEHIND, article_views, check_reads, url_views

pytestmark = pytest.mark.django_db(transaction=True)

SHARDS = 3
POISON = "/long/poison/"


@pytest.fixture
def shards(redis_url: str) -> Iterator[None]:
    with override_settings(PAGEVIEW_BUFFER_SHARDS=SHARDS, PAGEVIEW_THROTTLE_SECONDS=0):
        yield


def pending_by_shard(client: Any, shards: int = SHARDS) -> list[int]:
    """Views not yet acknowledged, per shard."""
    return [int(client.hget(Keys.shard(n).dims, "t") or 0) for n in range(shards)]


def stored_views() -> int:
    return int(PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0)


def ship_to(shard: int, targets: list[Target], shards: int = SHARDS) -> list[int]:
    """One shipment of a view of each target, to ``shard`` (made with ``shards``); SHIP's
    reply (the shard's views waiting, whether to flush early)."""
    now = time.time()
    events = [PageViewEvent(uuid.uuid4().hex, now, t, None, "", "") for t in targets]
    shipment = build_shipment(events, Counter())
    shipment.shard, shipment.shards = shard, shards
    keys, args = shipment.script_args()
    reply: list[int] = ship(keys=keys, args=args, client=get_client())
    return reply


def assert_nothing_left(client: Any) -> None:
    """No list, total, pending view, claim or restored group left in any shard."""
    for keys in all_shards(client):
        names = [str(k) for k in client.keys(keys.prefix + "*")]
        left = [k for k in names if k[len(keys.prefix) :].split(":")[0] in LEFT_BEHIND]
        assert left == [], keys.number


def test_the_shards_keys_and_the_default_names() -> None:
    with override_settings(PAGEVIEW_KEY_PREFIX="pv"):
        assert Keys.current() == Keys.shard(0) == Keys("{pv}:")  # as before shards existed
        assert Keys.shard(2) == Keys("{pv:2}:", 2)
        assert Keys.shard(2).pending == "{pv:2}:pending"
        assert Keys.current().registry == "{pv}:shards"


@pytest.mark.usefixtures("shards")
@override_settings(PAGEVIEW_SHIP_BATCH_SIZE=5, PAGEVIEW_BATCH_SIZE=7)
def test_both_batchers_spread_views_over_shards_and_a_drain_stores_each_once() -> None:
    client = get_client()
    responses = asgi_requests([("GET", "/async/", h) for h in distinct_visitors(60)])
    assert {r.status_code for r in responses} == {200}
    by_shard = pending_by_shard(client)
    assert sum(by_shard) == 60
    assert sum(1 for n in by_shard if n) > 1, by_shard  # the asyncio batcher spread them
    for i, headers in enumerate(distinct_visitors(40)):
        assert wsgi_get("/plain/", **headers).status_code == 200
        if i % 5 == 4:
            batcher.ship_all()
    batcher.ship_all()
    grown = [
        after - before for after, before in zip(pending_by_shard(client), by_shard, strict=True)
    ]
    assert sum(grown) == 40
    assert sum(1 for n in grown if n) > 1, grown  # so did the thread batcher
    assert client.get(Keys.current().registry) == str(SHARDS)
    assert PageView.get_view_count(url="/async/") == 60  # live: every shard's pending views
    assert PageView.get_view_count() == 100
    result = drain.drain_redis(time_budget=None)
    assert result.views == 100
    assert stored_views() == 100
    assert PageView.get_view_count(url="/plain/") == 40
    assert pending_by_shard(client) == [0, 0, 0]
    assert status(client)["shards"] == SHARDS
    assert_nothing_left(client)


@pytest.mark.usefixtures("shards")
@override_settings(PAGEVIEW_STORE_RAW=True, PAGEVIEW_BATCH_SIZE=2)
def test_live_reads_are_exact_with_views_in_every_shard_and_claims_open() -> None:
    client = get_client()
    articles = {s: Article.objects.create(title=s, slug=s) for s in ("a1", "a2", "a3")}
    truth: Counter[str] = Counter()
    # The same URLs and objects in several shards: a key's views are summed over them.
    parts = [
        [*url_views("/x/", 4), *url_views("/y/", 1), *article_views(articles["a1"], 3)],
        [*url_views("/x/", 1), *url_views("/y/", 3), *article_views(articles["a2"], 5)],
        [
            *url_views("/z/", 2),
            *article_views(articles["a1"], 1),
            *article_views(articles["a3"], 2),
        ],
    ]
    for shard, targets in enumerate(parts):
        ship_to(shard, targets)
        truth.update(t.url for t in targets)
    assert all(pending_by_shard(client))
    check_reads(truth, articles)

    shard1 = Keys.shard(1)
    batch_id = buffer.claim(client, 2, shard1)  # open, not written
    assert batch_id is not None
    check_reads(truth, articles)
    committed = read_claim(client, batch_id, shard1)
    assert committed.keys == shard1
    store(client, committed)  # committed, not yet acknowledged: in both places
    check_reads(truth, articles)

    drain.drain_redis(time_budget=None)  # every shard but that claim
    check_reads(truth, articles)
    assert drain.cleanup(stale_after=0).acknowledged == 1
    check_reads(truth, articles)
    assert stored_views() == sum(truth.values()) == 22
    assert_nothing_left(client)


@pytest.mark.usefixtures("shards", "small_batches")
def test_reads_are_exact_while_two_drains_empty_every_shard() -> None:
    """test_live_reads' reads (a count, a count by view name, two most-viewed lists,
    every one checked) while two threads drain a backlog spread over three shards."""
    client = get_client()
    now = time.time()
    total = 0
    for n, first in enumerate(range(0, test_live_reads.PAGES, 40)):
        pages = range(first, min(first + 40, test_live_reads.PAGES))
        targets = [
            test_live_reads.event(i, now).target
            for i in pages
            for _ in range(test_live_reads.page_views(i))
        ]
        ship_to(n % SHARDS, targets)
        total += len(targets)
    assert all(pending_by_shard(client))
    test_live_reads.check_every_read(total, inside_transaction=False)
    assert stored_views() == total  # each view once, whichever drain took it
    assert_nothing_left(client)


small_batches = test_live_reads.small_batches


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_views_of_one_shard_are_drained_after_the_setting_grows(redis_url: str) -> None:
    client = get_client()
    for headers in distinct_visitors(5):
        wsgi_get("/plain/", **headers)
    batcher.ship_all()
    assert pending_by_shard(client) == [5, 0, 0]  # shard 0: the names of every version
    assert client.get(Keys.current().registry) is None  # one shard: no registry
    with override_settings(PAGEVIEW_BUFFER_SHARDS=SHARDS, PAGEVIEW_SHIP_BATCH_SIZE=2):
        for i, headers in enumerate(distinct_visitors(12)):
            wsgi_get("/plain/", **headers)
            if i % 2 == 1:
                batcher.ship_all()
        assert all(pending_by_shard(client)), pending_by_shard(client)
        assert PageView.get_view_count(url="/plain/") == 17
        drain.drain_redis(time_budget=None)
    assert stored_views() == 17
    assert_nothing_left(client)


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0, PAGEVIEW_BATCH_SIZE=2)
def test_views_of_every_shard_are_read_and_drained_after_the_setting_is_lowered(
    redis_url: str,
) -> None:
    client = get_client()
    with override_settings(PAGEVIEW_BUFFER_SHARDS=SHARDS):
        for shard in range(SHARDS):
            ship_to(shard, url_views(f"/s{shard}/", 3 + shard))
        assert pending_by_shard(client) == [3, 4, 5]
        # A claim left open in shard 2 by a drain that stopped.
        assert buffer.claim(client, 2, Keys.shard(2)) is not None
    # Back to one shard: the registry still names three.
    assert client.get(Keys.current().registry) == str(SHARDS)
    assert PageView.get_view_count() == 12  # the live read visits every shard
    assert PageView.get_view_count(url="/s2/") == 5
    out = StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    assert '"pending_views": 12' in out.getvalue()
    for headers in distinct_visitors(2):  # new views: shard 0 only
        wsgi_get("/plain/", **headers)
    batcher.ship_all()
    assert pending_by_shard(client) == [5, 4, 5]
    result = drain.drain_redis(time_budget=None)
    assert result.views == 14 - 5  # shard 2 is all in its open claim, left to cleanup
    assert drain.cleanup(stale_after=0).replayed == 1
    assert stored_views() == 14
    assert PageView.get_view_count() == 14
    assert {u: PageView.get_view_count(url=u) for u in ("/s0/", "/s1/", "/s2/", "/plain/")} == {
        "/s0/": 3,
        "/s1/": 4,
        "/s2/": 5,
        "/plain/": 2,
    }
    assert_nothing_left(client)


@pytest.mark.usefixtures("shards")
def test_two_drains_at_once_store_each_view_once() -> None:
    client = get_client()
    with override_settings(PAGEVIEW_BATCH_SIZE=3, PAGEVIEW_STORE_RAW=True):
        for n in range(30):
            ship_to(n % SHARDS, url_views(f"/p/{n % 7}/", 1 + n % 4))
        expected = sum(1 + n % 4 for n in range(30))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                while drain.drain_redis(time_budget=None).batches:
                    pass
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert stored_views() == expected
    assert PageView.objects.count() == expected  # raw rows: each once too
    assert PageView.get_view_count() == expected
    assert_nothing_left(client)


@pytest.mark.usefixtures("shards")
@override_settings(PAGEVIEW_STORE_RAW=False)
def test_a_poison_record_is_set_aside_in_its_shard_and_replayed_from_there() -> None:
    client = get_client()
    ship_to(0, url_views("/ok/", 2))
    ship_to(2, [*url_views("/ok/", 1), *url_views(POISON, 3)])
    refuse_url(PageViewDaily, POISON)
    try:
        drain.drain_redis(time_budget=None)
        assert stored_views() == 3
        assert aside_ids(client) == []
        assert len(aside_ids(client, Keys.shard(2))) == 1
        assert aside_status(client)["views"] == 3  # summed over the shards
        assert PageView.get_view_count() == 3  # set aside: counted as invalid meanwhile
    finally:
        allow_all(PageViewDaily)
    out = StringIO()
    call_command("pageviews_flush", "--retry-aside", stdout=out)
    assert "Replayed 1 set-aside records (3 views)" in out.getvalue()
    assert stored_views() == 6
    assert aside_status(client)["batches"] == 0
    assert_nothing_left(client)


@override_settings(
    PAGEVIEW_BUFFER_SHARDS=SHARDS, PAGEVIEW_THROTTLE_SECONDS=0, PAGEVIEW_STORE_RAW=True
)
def test_a_shard_restored_from_an_old_snapshot_is_parked_not_drained_twice(
    private_redis: PrivateRedis,
) -> None:
    client = get_client()
    ship_to(0, url_views("/a/", 2))
    ship_to(2, url_views("/b/", 4))
    assert drain.drain_redis(time_budget=None).views == 6
    ship_to(2, url_views("/c/", 3))  # pending in the snapshot, drained after it
    redis.Redis.from_url(private_redis.url).save()
    assert drain.drain_redis(time_budget=None).views == 3
    private_redis.restart()  # back from the old snapshot: shard 2's claim sequence went back
    assert drain.drain_redis(time_budget=None).views == 0  # /c/ parked, not drained again
    [group] = restored_status(client)
    assert (group["shard"], group["views"]) == (2, 3)
    assert status(client)["restored_groups"] == 1
    assert PageView.get_view_count() == 9
    out = StringIO()
    call_command("pageviews_flush", "--replay-restored", stdout=out)
    # Its raw events show every view of /c/ in the database already: none written again.
    assert "Replayed restored views: 0 batches, 0 views." in out.getvalue()
    assert restored_status(client) == []
    assert stored_views() == 9
    assert PageView.objects.count() == 9


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_one_shard_costs_no_round_trip_more(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry rides in round trips made anyway (a live read's script, a drain's and
    a cleanup's first pipeline): with one shard, each path makes as many round trips as
    before shards existed (measured on the version before: the same numbers)."""
    for headers in distinct_visitors(4):
        wsgi_get("/plain/", **headers)
    batcher.ship_all()
    PageView.get_view_count(url="/plain/")  # scripts loaded, connection made
    get_popular_urls(limit=3)
    for headers in distinct_visitors(4):
        wsgi_get("/plain/", **headers)
    sent: list[bytes] = []
    send = Connection.send_packed_command

    def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        send(self, command, check_health)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(Connection, "send_packed_command", counted)

    def round_trips(work: Any) -> int:
        sent.clear()
        work()
        return len(sent)

    assert round_trips(batcher.ship_all) in (0, 1)  # SHIP (0: the thread shipped first)
    # SNAPSHOT; the statement asks the database for later claims (decision 46), not Redis
    assert round_trips(lambda: PageView.get_view_count(url="/plain/")) == 1
    assert round_trips(lambda: get_popular_urls(limit=3)) == 2  # SNAPSHOT_LISTS, seq
    assert round_trips(drain.cleanup) == 1  # stale claims (and the registry)
    drain.drain_redis(time_budget=None)
    # An empty buffer: the restore check (and the registry), failed claims, a claim.
    assert round_trips(lambda: drain.drain_redis(time_budget=None)) == 3


@pytest.mark.usefixtures("shards")
def test_the_metrics_and_the_status_sum_the_shards() -> None:
    client = get_client()
    for shard in range(SHARDS):
        ship_to(shard, url_views(f"/m{shard}/", 2 + shard))
    assert buffer.claim(client, 1, Keys.shard(2)) is not None
    samples = test_metrics.scrape()
    assert value(samples, "pageviews_redis_pending_views") == 9  # the buffer's depth
    assert value(samples, "pageviews_redis_claimed_batches") == 1
    report = test_metrics.status_json()["redis"]
    assert (report["pending_views"], report["claimed_batches"], report["shards"]) == (9, 1, 3)
    assert report["oldest_claim_age_seconds"] is not None
    assert report["oldest_pending_age_seconds"] is not None
    drain.drain_redis(time_budget=None)
    drain.cleanup(stale_after=0)
    samples = test_metrics.scrape()
    assert value(samples, "pageviews_redis_pending_views") == 0
    # The drains' views: a claim replayed by cleanup is not counted there (as before shards).
    assert value(samples, "pageviews_redis_drained_views_total") == 9 - 4


@pytest.mark.usefixtures("shards")
@override_settings(PAGEVIEW_EARLY_FLUSH_THRESHOLD=8)
def test_an_early_flush_comes_at_a_shards_share_of_the_threshold() -> None:
    """Each shard sees its own views: a shipment asks for an early flush when its shard
    holds the threshold divided by the shard count (rounded up: 3 of 8), once per shard
    and interval."""
    assert ship_to(1, url_views("/e/", 2)) == [2, 0]
    assert ship_to(2, url_views("/e/", 2)) == [2, 0]
    assert ship_to(1, url_views("/e/", 1)) == [3, 1]
    assert ship_to(1, url_views("/e/", 1)) == [4, 0]  # within the interval
    assert ship_to(2, url_views("/e/", 1)) == [3, 1]


def test_a_kept_shipment_that_cannot_be_read_fails_alone(redis_url: str) -> None:
    """Its shard is read from its payload: one that is not JSON fails (counted) where its
    write would, and cleanup goes on."""
    UnsettledShipment.objects.create(shipment_id="bad", payload="not json", views=1)
    result = reconcile(get_client())
    assert (result.failed, result.written, result.in_redis) == (1, 0, 0)
    assert UnsettledShipment.objects.filter(shipment_id="bad").exists()


@pytest.mark.usefixtures("shards")
def test_a_shard_that_fails_leaves_the_others_drained() -> None:
    """A shard whose claim fails (here a key of the wrong type, a real Redis error) does
    not keep the drain from the other shards; the drain raises once they are done."""
    client = get_client()
    for shard in range(SHARDS):
        ship_to(shard, url_views(f"/f{shard}/", 2))
    client.rename(Keys.shard(1).pending, "elsewhere")
    client.set(Keys.shard(1).pending, "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        drain.drain_redis(time_budget=None)
    assert stored_views() == 4  # shards 0 and 2
    client.delete(Keys.shard(1).pending)
    client.rename("elsewhere", Keys.shard(1).pending)
    assert drain.drain_redis(time_budget=None).views == 2
    assert stored_views() == 6
    assert_nothing_left(client)
