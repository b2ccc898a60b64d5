"""The async path as deployed: uvicorn, a Celery worker and beat, Redis and the database,
each a real process; and flushers killed with SIGKILL at the worst moments."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from django.db import connection, transaction
from django.db.models import Sum

from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
from django_pageviews.redis.buffer import Keys
from django_pageviews.redis.drain import cleanup
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import distinct_visitors, wsgi_get
from tests.processes import (
    celery,
    free_port,
    running,
    subprocess_env,
    uvicorn,
    wait_for,
    wait_until_serving,
)

pytestmark = pytest.mark.django_db(transaction=True)


def stored_views() -> int:
    return PageViewDaily.objects.aggregate(total=Sum("views"))["total"] or 0


def test_uvicorn_worker_and_beat_count_exactly(redis_url: str, tmp_path: Path) -> None:
    n = 300
    env = subprocess_env(redis_url, PAGEVIEW_TEST_BEAT_SECONDS="1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = uvicorn("tests.asgi:application", port)
    worker = celery("-A", "tests.celery_app", "worker", "-l", "info", "--pool", "solo")
    beat = celery(
        "-A", "tests.celery_app", "beat", "-l", "info", "-s", str(tmp_path / "beat-schedule")
    )
    with (
        running(server, env, tmp_path / "uvicorn.log") as server_process,
        running(worker, env, tmp_path / "worker.log"),
        running(beat, env, tmp_path / "beat.log"),
    ):
        wait_until_serving(base + "/plain/", server_process)

        async def load() -> list[int]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                responses = await asyncio.gather(
                    *(client.get("/async/", headers=h) for h in distinct_visitors(n))
                )
                return [r.status_code for r in responses]

        assert asyncio.run(load()) == [200] * n
        wait_for(lambda: stored_views() >= n, f"{n} views in the database")
        time.sleep(2)  # two more beat ticks find nothing more to write
    assert stored_views() == n
    assert PageView.objects.filter(url="/async/").count() == n
    assert PageView.get_view_count(url="/async/") == n


def _ship(n: int, pages: int = 1) -> None:
    """Put ``n`` views of ``pages`` different pages into Redis through the WSGI path."""
    for i, headers in enumerate(distinct_visitors(n)):
        assert wsgi_get(f"/pages/{i % pages}/", **headers).status_code == 200
    batcher.ship_all()


FLUSHER = [
    sys.executable,
    "-c",
    "import django; django.setup(); "
    "from django_pageviews.redis.drain import drain_redis; drain_redis(None)",
]


@contextmanager
def database_write_lock() -> Iterator[None]:
    """Hold a lock that makes any flusher wait before its commit, while reads go on (a
    drain reads the batch ids' high-water mark before it claims: redis/restore.py)."""
    table = connection.ops.quote_name(ProcessedBatch._meta.db_table)
    if connection.vendor == "sqlite":
        raw = sqlite3.connect(connection.settings_dict["NAME"])
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            raw.rollback()
            raw.close()
    elif connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")  # blocks INSERT only
            yield
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLES {table} READ")  # others may read, not write
            try:
                yield
            finally:
                cursor.execute("UNLOCK TABLES")


def _claims(client: redis.Redis) -> int:
    return int(client.zcard(Keys.current().claims))


def test_flusher_killed_before_commit_loses_nothing(redis_url: str, tmp_path: Path) -> None:
    _ship(50)
    client = redis.Redis.from_url(redis_url)
    try:
        with (
            database_write_lock(),
            running(FLUSHER, subprocess_env(redis_url), tmp_path / "flusher.log") as flusher,
        ):
            wait_for(lambda: _claims(client) == 1, "the flusher's claim")
            time.sleep(1)  # it is now waiting for the lock, before its commit
            flusher.send_signal(signal.SIGKILL)
            flusher.wait()
        assert stored_views() == 0
        assert PageView.get_view_count() == 50  # claimed, not written: still live
        result = cleanup(stale_after=0)
        assert (result.replayed, result.acknowledged) == (1, 0)
        assert stored_views() == 50
        assert PageView.get_view_count() == 50
        assert _claims(client) == 0
    finally:
        client.close()


def test_flusher_killed_after_commit_counts_nothing_twice(redis_url: str, tmp_path: Path) -> None:
    _ship(50)
    client = redis.Redis.from_url(redis_url)
    env = subprocess_env(redis_url, PAGEVIEW_REDIS_SOCKET_TIMEOUT="60")
    try:
        with running(FLUSHER, env, tmp_path / "flusher.log") as flusher:
            with database_write_lock():
                wait_for(lambda: _claims(client) == 1, "the flusher's claim")
                client.client_pause(60000, all=False)  # writes only
            try:
                # The flusher commits, then hangs on its acknowledgement.
                wait_for(lambda: ProcessedBatch.objects.count() == 1, "the commit")
                time.sleep(0.3)
                flusher.send_signal(signal.SIGKILL)
                flusher.wait()
            finally:
                client.client_unpause()
        assert stored_views() == 50
        assert _claims(client) == 1
        assert PageView.get_view_count() == 50  # committed and still in Redis: once
        result = cleanup(stale_after=0)
        assert (result.replayed, result.acknowledged) == (0, 1)
        assert stored_views() == 50
        assert PageView.get_view_count() == 50
    finally:
        client.close()


def test_four_flushers_in_parallel_are_exact(redis_url: str, tmp_path: Path) -> None:
    _ship(600, pages=150)
    env = subprocess_env(redis_url, PAGEVIEW_BATCH_SIZE="10")
    with ExitStack() as stack:
        flushers = [
            stack.enter_context(running(FLUSHER, env, tmp_path / f"flusher-{i}.log"))
            for i in range(4)
        ]
        for flusher in flushers:
            assert flusher.wait(timeout=120) == 0
    assert stored_views() == 600
    assert ProcessedBatch.objects.aggregate(total=Sum("views"))["total"] == 600
    assert PageViewDaily.objects.count() == 150
    assert PageView.objects.count() == 600
    assert PageView.get_view_count() == 600
