"""The Redis path on a real Redis Cluster (three masters, three replicas): every script and
pipeline runs on it, counts and live reads are exact.

The cluster is the xdist worker's own (tests/redis_cluster.py), emptied before each test.
The first tests here check what the others rely on; then the Redis path's own tests run
again with ``redis_url`` overridden to name the cluster (PAGEVIEW_REDIS_CLUSTER on), each
picked for the scripts and pipelines it drives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.checks import check_redis_reachable
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from django_pageviews.redis import buffer, drain
from django_pageviews.redis.buffer import Keys
from django_pageviews.redis.client import get_client
from django_pageviews.redis.sync_batcher import batcher
from tests import (
    test_aside,
    test_drain_faults,
    test_drain_groups,
    test_live_reads,
    test_redis_pipeline,
    test_redis_shards,
)
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get
from tests.processes import free_port, wait_for
from tests.redis_cluster import PrivateCluster, cluster_info
from tests.redis_server import PrivateRedis
from tests.test_redis_pipeline import stored_views

SPILLED = "spilled_redis_down"

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_url(redis_cluster: PrivateCluster) -> Iterator[str]:
    """The Redis path's tests, reused below, run on the cluster."""
    yield redis_cluster.url


def test_the_fixture_is_a_cluster_of_three_masters_with_a_replica_each(
    redis_cluster: PrivateCluster,
) -> None:
    masters = redis_cluster.masters()
    replicas = [n for n in redis_cluster.nodes if redis_cluster.role(n) == "slave"]
    assert (len(masters), len(replicas)) == (3, 3)
    assert redis_cluster.healthy()
    info = cluster_info(redis_cluster)
    assert (info["cluster_state"], info["cluster_slots_ok"], info["cluster_size"]) == (
        "ok",
        "16384",
        "3",
    )


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_every_key_of_the_buffer_lives_in_one_slot(redis_cluster: PrivateCluster) -> None:
    """Shipped, claimed, acknowledged, reported: whatever the path wrote is in the slot of
    the prefix's hash tag, on one master."""
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(5)])
    client = get_client()
    assert buffer.claim(client, 2) is not None  # one claim left open: its chunk keys
    assert PageView.get_view_count(url="/plain/") == 5
    call_command("pageviews_status", "--json", stdout=StringIO())
    keys = sorted(client.scan_iter(match="*", count=1000))
    assert any(":chunk:" in k for k in keys), keys
    slots = {client.keyslot(k) for k in keys}
    assert slots == {client.keyslot(Keys.current().pending)}
    assert drain.cleanup(stale_after=0).replayed == 1  # the open claim
    flush()
    assert stored_views() == 5


def test_the_deploy_check_reads_the_cluster(redis_cluster: PrivateCluster) -> None:
    assert check_redis_reachable() == []
    # A cluster client connects when it is made: no node there is E030, not a traceback.
    with override_settings(PAGEVIEW_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        assert [e.id for e in check_redis_reachable()] == ["django_pageviews.E030"]


def test_the_deploy_check_reads_the_eviction_policy_of_every_primary(
    redis_cluster: PrivateCluster,
) -> None:
    for node in redis_cluster.masters():
        with redis.Redis.from_url(node.url) as client:
            client.config_set("maxmemory-policy", "allkeys-lru")
        try:
            assert [e.id for e in check_redis_reachable()] == ["django_pageviews.W001"]
        finally:
            with redis.Redis.from_url(node.url) as client:
                client.config_set("maxmemory-policy", "noeviction")
    assert check_redis_reachable() == []


def test_views_shipped_while_no_node_answers_go_to_the_fallback(
    redis_cluster: PrivateCluster,
) -> None:
    """The sync cluster client reads the slot map when it is made: with no node to ask,
    making it fails, and the thread batcher's views go to the fallback (spilled to the
    database path), none lost."""
    spilled = stats.snapshot().get(SPILLED, 0)
    with override_settings(PAGEVIEW_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        for headers in distinct_visitors(4):
            assert wsgi_get("/plain/", **headers).status_code == 200
        batcher.ship_all()  # no client: the breaker opens, the views stay queued
        batcher.ship_all(give_up=True)  # as at exit: the open breaker spills them
        assert stats.snapshot().get(SPILLED, 0) - spilled == 4
    flush()  # the spilled views (a flush with no node would raise, as on one server)
    assert stored_views() == 4


@override_settings(PAGEVIEW_BATCH_SIZE=5)
def test_a_group_of_claims_is_acknowledged_on_a_node_without_the_script(
    redis_cluster: PrivateCluster,
) -> None:
    """A cluster's pipelines refuse scripts: a group's ACKs go one by one, each loading
    the script where the node has none (SCRIPT FLUSH here; a replica just promoted
    starts with an empty script cache)."""
    test_drain_groups.ship_views(10)
    client = get_client()
    claims = []
    for _ in range(2):
        batch_id = buffer.claim(client, 5)
        assert batch_id is not None
        claims.append(buffer.read_claim(client, batch_id))
    client.script_flush()  # every primary
    assert drain.write_claims(client, claims, {}) == 10
    assert test_drain_groups.open_claims() == 0
    assert (test_drain_faults.total(), PageView.objects.count()) == (10, 10)


# The Redis path's own tests, again on the cluster (with the fixtures they use).
groups = test_drain_groups.groups
test_a_backlog_is_written_in_groups_of_whole_claims = (
    test_drain_groups.test_a_backlog_is_written_in_groups_of_whole_claims
)
small_batches = test_live_reads.small_batches
test_wsgi_views_are_shipped_by_the_thread_batcher = (
    test_redis_pipeline.test_wsgi_views_are_shipped_by_the_thread_batcher
)
test_counts_only_and_many_small_batches = (
    test_redis_pipeline.test_counts_only_and_many_small_batches
)
test_a_batch_committed_but_not_acknowledged_is_counted_once = (
    test_redis_pipeline.test_a_batch_committed_but_not_acknowledged_is_counted_once
)
test_a_claimed_batch_never_written_is_replayed_by_cleanup = (
    test_redis_pipeline.test_a_claimed_batch_never_written_is_replayed_by_cleanup
)
test_a_retried_shipment_lands_once = test_redis_pipeline.test_a_retried_shipment_lands_once
test_poison_records_are_skipped_and_counted = (
    test_redis_pipeline.test_poison_records_are_skipped_and_counted
)
test_status_command_reports_the_buffer = test_redis_pipeline.test_status_command_reports_the_buffer
test_views_not_yet_shipped_by_this_process_are_live = (
    test_redis_pipeline.test_views_not_yet_shipped_by_this_process_are_live
)
test_skip_counts_ride_through_redis_with_the_views = (
    test_redis_pipeline.test_skip_counts_ride_through_redis_with_the_views
)
test_reads_are_exact_while_a_backlog_drains = (
    test_live_reads.test_reads_are_exact_while_a_backlog_drains
)
test_a_hold_keeps_new_claims_off_until_released = (
    test_live_reads.test_a_hold_keeps_new_claims_off_until_released
)
test_equal_totals_rank_by_key_across_the_database_and_redis = (
    test_live_reads.test_equal_totals_rank_by_key_across_the_database_and_redis
)
test_objects_named_by_pk_and_by_slug_over_several_days = (
    test_live_reads.test_objects_named_by_pk_and_by_slug_over_several_days
)
test_an_old_set_aside_batch_with_a_poison_record_is_split = (
    test_aside.test_an_old_set_aside_batch_with_a_poison_record_is_split
)


def _node_id(node: PrivateRedis) -> str:
    with redis.Redis.from_url(node.url, decode_responses=True) as client:
        return str(client.execute_command("CLUSTER", "MYID"))


def _migrate(source: PrivateRedis, target: PrivateRedis, slot: int, share: float) -> int:
    """MIGRATE ``share`` of the keys still in ``slot`` on ``source`` to ``target``."""
    with redis.Redis.from_url(source.url, decode_responses=True) as client:
        keys = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10_000)
        moved = keys[: max(1, int(len(keys) * share))] if keys else []
        if moved:
            client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *moved)
        return len(moved)


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_views_shipped_and_drained_while_the_buffers_slot_migrates_are_counted_once(
    redis_cluster: PrivateCluster,
) -> None:
    """A reshard moves the buffer's slot to another master key by key (what ``redis-cli
    --cluster reshard`` does): meanwhile the old master answers ASK for a key already
    moved and TRYAGAIN for a script whose keys are split. Views shipped (both clients)
    and drains run before, during and after the move are counted once, none lost."""
    pending = Keys.current().pending
    visitors = iter(distinct_visitors(40))

    def ship(n: int, asgi: bool = True) -> None:
        if asgi:
            asgi_requests([("GET", "/plain/", next(visitors)) for _ in range(n // 2)])
        for _ in range(n - n // 2 if asgi else n):
            assert wsgi_get("/plain/", **next(visitors)).status_code == 200
        batcher.ship_all()

    ship(10)
    client = get_client()
    assert buffer.claim(client, 3) is not None  # a claim open across the move
    source = redis_cluster.master_of(pending)
    assert source is not None
    target = next(n for n in redis_cluster.masters() if n is not source)
    slot = client.keyslot(pending)
    source_id, target_id = _node_id(source), _node_id(target)
    with redis.Redis.from_url(target.url) as t, redis.Redis.from_url(source.url) as s:
        t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    assert _migrate(source, target, slot, 0.5) >= 1
    errors = stats.snapshot().get(stats.REDIS_ERROR, 0)
    ship(10)  # keys split between two masters: TRYAGAIN
    assert stats.snapshot().get(stats.REDIS_ERROR, 0) > errors  # the fault was met
    with contextlib.suppress(redis.RedisError):
        flush()  # TRYAGAIN until the move ends: the drain's work waits in Redis
    _migrate(source, target, slot, 1.0)
    # Every key moved, the slot still MIGRATING: ASK. The thread batcher only: redis-py's
    # asyncio cluster client (8.1) follows ASK but leaves connections of ClusterNode
    # objects unclosed (a ResourceWarning at exit), which the suite's warnings fail on.
    ship(10, asgi=False)
    for node in redis_cluster.masters():
        with redis.Redis.from_url(node.url) as c:
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    wait_for(lambda: redis_cluster.master_of(pending) is target, "the slot to be the target's")
    ship(10)
    batcher.ship_all(give_up=True)  # a shipment refused during the move: retried, once
    drain.cleanup(stale_after=0)  # the claim opened before the move
    flush()
    assert stored_views() == 40
    assert PageView.objects.count() == 40


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_a_url_naming_a_replica_finds_the_primaries(redis_cluster: PrivateCluster) -> None:
    """The URL may name any node, a replica too (after a failover the node an operator
    wrote down may be one): the clients read the slot map there and write to primaries."""
    replica = next(n for n in redis_cluster.running() if redis_cluster.role(n) == "slave")
    with override_settings(PAGEVIEW_REDIS_URL=replica.url):
        asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
        for headers in distinct_visitors(6)[3:]:
            assert wsgi_get("/plain/", **headers).status_code == 200
        batcher.ship_all()
        assert PageView.get_view_count(url="/plain/") == 6
        assert check_redis_reachable() == []
        flush()
    assert stored_views() == 6


# PAGEVIEW_BUFFER_SHARDS on the cluster: each shard's keys in one slot of their own.
shards = test_redis_shards.shards


@pytest.mark.usefixtures("shards")
@override_settings(PAGEVIEW_SHIP_BATCH_SIZE=4)
def test_each_shard_keeps_its_keys_in_a_slot_of_its_own(redis_cluster: PrivateCluster) -> None:
    """Shipped by both batchers, one claim left open, reported: every key the path wrote
    is in the slot of its shard's hash tag, and the three shards are three slots."""
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(24)])
    for i, headers in enumerate(distinct_visitors(12)):
        wsgi_get("/plain/", **headers)
        if i % 4 == 3:
            batcher.ship_all()
    client = get_client()
    assert all(test_redis_shards.pending_by_shard(client))
    assert buffer.claim(client, 2, Keys.shard(1)) is not None
    assert PageView.get_view_count(url="/plain/") == 36
    call_command("pageviews_status", "--json", stdout=StringIO())
    slots = {n: client.keyslot(Keys.shard(n).pending) for n in range(test_redis_shards.SHARDS)}
    assert len(set(slots.values())) == test_redis_shards.SHARDS
    written = sorted(client.scan_iter(match="*", count=1000))
    for key in written:
        shard = next(n for n in slots if key.startswith(Keys.shard(n).prefix))
        assert client.keyslot(key) == slots[shard], key
    assert {client.keyslot(k) for k in written} == set(slots.values())
    nodes = {client.get_node_from_key(Keys.shard(n).pending).name for n in slots}
    assert len(nodes) > 1  # {pageviews}, {pageviews:1}: one primary; {pageviews:2}: another
    assert drain.drain_redis(time_budget=None).views + drain.cleanup(stale_after=0).replayed
    flush()
    assert stored_views() == 36
    assert PageView.get_view_count(url="/plain/") == 36


test_shards_spread_and_drain_exactly = (
    test_redis_shards.test_both_batchers_spread_views_over_shards_and_a_drain_stores_each_once
)
test_shards_live_reads_with_claims_open = (
    test_redis_shards.test_live_reads_are_exact_with_views_in_every_shard_and_claims_open
)
test_shards_reads_while_two_drains_run = (
    test_redis_shards.test_reads_are_exact_while_two_drains_empty_every_shard
)
test_shards_lowered = (
    test_redis_shards.test_views_of_every_shard_are_read_and_drained_after_the_setting_is_lowered
)
