"""The Redis + Celery path on a real Redis Cluster, across real processes, with the exact
accounting of the other chaos tests (views sent == stored + dropped, Redis idle at the end).

Two uvicorn processes and two Celery workers share the cluster; the Celery broker is a
redis-server of its own (kombu's Redis transport does not speak to a cluster). Then the
master that holds the buffer's slot is SIGKILLed mid-load and its replica takes over
(automatic failover after ``cluster-node-timeout``, 1 s here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from django_pageviews.models import ProcessedBatch
from django_pageviews.redis.buffer import Keys
from tests.chaos.pipeline_load import Load
from tests.chaos.pipeline_stack import Stack
from tests.chaos.test_pipeline_faults import account, article_pages, finish
from tests.processes import wait_for
from tests.redis_cluster import PrivateCluster, cluster_info
from tests.redis_server import PrivateRedis

pytestmark = [pytest.mark.chaos, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

# Every process: the cluster, and no early flush (it would send a Celery task through the
# web process's broker setting, which names the cluster in tests/settings.py).
CLUSTER_SETTINGS = {"PAGEVIEW_REDIS_CLUSTER": "true", "PAGEVIEW_EARLY_FLUSH_THRESHOLD": "0"}


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


def stack(tmp_path: Path, cluster: PrivateCluster, broker: PrivateRedis, **settings: str) -> Stack:
    every = {**CLUSTER_SETTINGS, **settings}
    return Stack(tmp_path, cluster.url, broker_url=broker.url, settings=every)


@pytest.mark.parametrize("shards", [1, 3])
def test_exact_counts_with_two_uvicorn_processes_and_two_drain_workers(
    redis_cluster: PrivateCluster, broker: PrivateRedis, tmp_path: Path, shards: int
) -> None:
    """With PAGEVIEW_BUFFER_SHARDS 1 and 3 (decision 42)."""
    client = redis_cluster.client()
    settings = {"PAGEVIEW_BUFFER_SHARDS": str(shards)}
    with stack(tmp_path, redis_cluster, broker, **settings) as procs, client:
        webs = [procs.web("web-a"), procs.web("web-b")]
        procs.worker("worker-a")
        procs.worker("worker-b")
        procs.beat("beat")
        load = Load([w.base for w in webs], 1200, "cluster", article_pages, rate=200).start()
        result, ledger = finish(procs, load, client)
        account(result, ledger, what=f"cluster, {shards} shards, 2 web processes, 2 workers")
        assert procs.tasks_done() >= 2
    # Each shard names its own epoch, which every batch drained from it records.
    epochs = ProcessedBatch.objects.values("redis_epoch").distinct().count()
    assert epochs == 1 if shards == 1 else epochs > 1


@pytest.fixture
def own_cluster() -> Iterator[PrivateCluster]:
    """A cluster of the test's own: it loses a node."""
    cluster = PrivateCluster()
    cluster.start()
    try:
        with override_settings(
            PAGEVIEW_ASYNC_PROCESSING=True,
            PAGEVIEW_REDIS_URL=cluster.url,
            PAGEVIEW_REDIS_CLUSTER=True,
        ):
            yield cluster
    finally:
        cluster.close()


def test_a_master_killed_mid_load_and_its_replica_promoted(
    own_cluster: PrivateCluster, broker: PrivateRedis, tmp_path: Path
) -> None:
    """The master of the buffer's slot SIGKILLed while views arrive and drains run. Until
    its replica is promoted (cluster-node-timeout, then an election), shipments to it are
    refused and spill to the web processes' database path, and drains fail and retry;
    afterwards everything goes to the new master. The replica was in sync (loopback):
    nothing is lost, nothing counted twice."""
    cluster = own_cluster
    client = cluster.client()
    with stack(tmp_path, cluster, broker) as procs, client:
        webs = [procs.web("web-a"), procs.web("web-b")]
        procs.worker("worker-a")
        procs.worker("worker-b")
        procs.beat("beat")
        load = Load([w.base for w in webs], 2400, "failover", article_pages, rate=200).start()
        load.wait_answered(800)
        key = Keys.current().pending
        victim = cluster.master_of(key)
        assert victim is not None
        cluster.kill(victim)
        killed_at, answered_at_kill = time.monotonic(), load.answered

        def promoted() -> bool:
            return cluster.master_of(key) not in (None, victim) and cluster.healthy()

        wait_for(promoted, "a replica promoted", explain=lambda: str(cluster_info(cluster)))
        promoted_after = time.monotonic() - killed_at
        load.wait_answered(load.answered + 300, "after the failover")
        # This process's own reads (the live read at the end) start from a running node.
        with override_settings(PAGEVIEW_REDIS_URL=cluster.url):
            result, ledger = finish(procs, load, client)
            print(
                f"failover: killed at {answered_at_kill} answered, replica promoted after "
                f"{promoted_after:.1f} s; skipped {ledger.skipped}"
            )
            account(result, ledger, what="cluster master killed, replica promoted")
