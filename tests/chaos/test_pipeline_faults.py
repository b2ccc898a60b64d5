"""The Redis + Celery path under real faults, with exact accounting (issue #10).

Each test runs real uvicorn, Celery worker and beat processes against a private
redis-server and the tests' database, sends a bounded load of distinct visitors, injects
one fault for real while the load runs, and then checks that every view sent (a 200 from
a tracked page) is in the database exactly once, or counted as dropped where the
guarantees allow a loss: views sent == PageViewDaily total + SkippedDaily "dropped" and
"invalid" (+ what a crashed Redis held, for the one fault that destroys Redis's memory).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum
from django.test import override_settings

from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
from django_pageviews.redis.buffer import Keys, raw_event_count
from tests.chaos.faults_db import refusing_writes
from tests.chaos.faults_redis import ChaosRedis
from tests.chaos.pipeline_load import Load, LoadResult
from tests.chaos.pipeline_stack import (
    CLEANUP_TASK,
    PLAIN_APP,
    Ledger,
    Stack,
    pending_in,
    processed_batches,
    read_ledger,
    redis_state,
    settle,
)
from tests.processes import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

PAGES = 40
POISON_EVERY = 33  # 3% of the requests
RESTARTS = 4  # SIGTERMs of a web process in the rolling-restart test
FULL_HEADROOM = 400_000  # bytes of Redis memory the load may fill before OOM
SQLITE_BUSY_TIMEOUT = "0.5"  # seconds a worker waits for SQLite's write lock (faults_db)


def article_pages(i: int) -> tuple[str, str]:
    return f"/pages/{i % PAGES}/", "page"


def with_slow_pages(i: int) -> tuple[str, str]:
    if i % 4 == 0:  # a quarter of the pages take 0.3 s: some are running at a SIGTERM
        return f"/chaos/slow/{i % PAGES}/", "slow"
    return article_pages(i)


def with_poison(i: int) -> tuple[str, str]:
    if i % POISON_EVERY == 0:
        return f"/chaos/category/c{i % 7}/", "poison"
    return article_pages(i)


def _started() -> Iterator[ChaosRedis]:
    server = ChaosRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


# The buffer's Redis and the Celery broker's: separate servers, so a fault injected into
# one never touches the other.
chaos_redis = pytest.fixture(scope="module", name="chaos_redis")(_started)
broker_redis = pytest.fixture(scope="module", name="broker_redis")(_started)


@pytest.fixture
def data_redis(chaos_redis: ChaosRedis) -> Iterator[ChaosRedis]:
    """The module's private Redis, running and empty, as this process's buffer too (for
    the live read at the end)."""
    if chaos_redis.process is None:
        chaos_redis.start()
    chaos_redis.reset()
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=chaos_redis.url):
        yield chaos_redis
    if chaos_redis.process is not None:
        chaos_redis.reset()


def account(
    result: LoadResult, ledger: Ledger, lost: int = 0, lost_raw: int = 0, what: str = ""
) -> None:
    """The exact accounting every test ends with."""
    report = (
        f"{what}: sent {result.ok} ({dict(result.ok_by_kind)}), stored {ledger.stored}, "
        f"raw rows {ledger.raw_rows}, dropped {ledger.dropped}, lost with Redis {lost}, "
        f"skipped {ledger.skipped}, redis {ledger.redis}, load {result}"
    )
    print(report)
    assert result.gave_up == 0, report
    assert set(result.statuses) == {200}, report
    assert ledger.dropped == 0, report
    assert ledger.stored == result.ok - lost, report
    assert ledger.raw_rows == result.ok - lost_raw, report
    assert ledger.redis_idle, report
    assert ledger.redis["aside_batches"] == ledger.redis["aside_keys"] == 0, report
    assert "error" not in ledger.skipped and "throttled" not in ledger.skipped, report
    assert PageView.get_view_count() == ledger.stored, report  # the live read agrees


def finish(
    stack: Stack, load: Load, client: Any, lost: int = 0, already: int = 0
) -> tuple[LoadResult, Ledger]:
    """End of every test: the load's result, then the ledger once the pipeline settled and
    two more drains ran (they must find nothing more to write). ``already``: views stored
    by an earlier load of the same test."""
    result = load.join()
    ledger = settle(already + result.ok - lost, client)
    if ledger.stored + ledger.dropped == already + result.ok - lost:
        stack.wait_tasks(2)
        ledger = read_ledger(client)
    return result, ledger


def test_redis_crashes_mid_load_and_comes_back_empty(
    data_redis: ChaosRedis, tmp_path: Path
) -> None:
    """Fault 1: Redis hangs, is killed and restarts empty while the load runs. While it is
    gone, views spill to the web process's in-process path; afterwards shipping resumes.
    What Redis held when it died (not yet written) is the only loss allowed: measured
    exactly, with writes paused, just before the crash."""
    with Stack(tmp_path, data_redis.url) as stack, data_redis.client() as client:
        web = stack.web("web")
        stack.worker("worker")
        stack.beat("beat")
        load = Load([web.base], 2400, "redis-crash", article_pages).start()
        load.wait_answered(600)
        held = crash_paused(data_redis, client)
        down_at = load.answered
        load.wait_answered(down_at + 150, "while Redis is down")
        data_redis.start()
        load.wait_answered(load.answered + 150, "after Redis came back")
        load.join()
        lost, lost_raw = held.lost()  # the load is over: any commit in flight is done
        result, ledger = finish(stack, load, client, lost)
        print(f"redis crash: held when killed {held}, answered while down from {down_at}")
        account(result, ledger, lost, lost_raw, "redis crash")


@dataclass
class Held:
    """What a crashed Redis held: views not yet claimed, and the open claims."""

    pending_views: int
    raw_events: int
    claims: dict[str, tuple[int, int]]  # batch id -> (views, raw events)

    def lost(self) -> tuple[int, int]:
        """Views and raw events gone with Redis: the pending ones, and those of claims
        whose batch never reached the database."""
        written = set(
            ProcessedBatch.objects.filter(batch_id__in=self.claims).values_list(
                "batch_id", flat=True
            )
        )
        gone = [v for b, v in self.claims.items() if b not in written]
        return (
            self.pending_views + sum(v for v, _ in gone),
            self.raw_events + sum(r for _, r in gone),
        )


def crash_paused(server: ChaosRedis, client: Any) -> Held:
    """Pause Redis's writes, read what it holds, let it hang a second (the shippers time
    out and keep their shipments), then SIGKILL it: nothing lands after the reading."""
    keys = Keys.current()
    client.client_pause(10_000, all=False)
    claims = {
        batch_id: (
            pending_in(client, keys.chunk(batch_id)),
            raw_event_count(client, keys.evchunk(batch_id)),
        )
        for batch_id in client.zrange(keys.claims, 0, -1)
    }
    held = Held(
        pending_views=pending_in(client, keys.pending),
        raw_events=raw_event_count(client, keys.events),
        claims=claims,
    )
    time.sleep(1.0)  # part of the fault: a hung server, then a crash
    server.kill()
    return held


def test_redis_full_still_drains_and_ships_again(
    data_redis: ChaosRedis, broker_redis: ChaosRedis, tmp_path: Path
) -> None:
    """Fault 2 (issue item 5a): with maxmemory and noeviction, the load fills Redis until
    it refuses writes (OOM); views then spill. A worker started then must still drain
    (the drain is what frees memory), and shipping to Redis must resume. The Celery broker
    is another Redis: on the full one, beat could not even send the drain task."""
    broker_redis.reset()
    with Stack(tmp_path, data_redis.url, broker_url=broker_redis.url) as stack:
        client = data_redis.client()
        web = stack.web("web")
        stack.beat("beat")
        data_redis.limit_memory(FULL_HEADROOM)
        load = Load([web.base], 3000, "redis-full", article_pages).start()
        wait_for(lambda: data_redis.oom_errors() > 0, "Redis refusing writes (OOM)", 120)
        load.wait_answered(load.answered + 100, "while Redis is full")
        stack.worker("worker")
        result, ledger = finish(stack, load, client)
        account(result, ledger, what="redis full")
        # Shipping resumes by itself once Redis has room again (within the breaker's
        # longest pause; views spill meanwhile). The drain freed every key it wrote, but
        # Redis keeps some of the memory the load made it allocate (its own overhead, not
        # our keys), so room is made as an operator would: a higher limit.
        data_redis.limit_memory(FULL_HEADROOM)
        shipments_before = _shipments(client)
        sent_after = 0
        deadline = time.monotonic() + 90
        while _shipments(client) == shipments_before:  # a view now and then, as a site has
            assert time.monotonic() < deadline, "shipping to Redis never resumed"
            more = Load([web.base], 50, f"redis-full-after-{sent_after}", article_pages).start()
            after = more.join()
            assert after.gave_up == 0 and set(after.statuses) == {200}, after
            sent_after += after.ok
            time.sleep(1)
        ledger = settle(result.ok + sent_after, client)
        print(
            f"redis full: OOM errors {data_redis.oom_errors()}, views sent after the drain "
            f"{sent_after} before a shipment landed"
        )
        total = result.ok + sent_after
        assert (ledger.stored, ledger.raw_rows, ledger.dropped) == (total, total, 0), ledger
        client.close()


def _shipments(client: Any) -> int:
    """Shipments Redis took (their ids are remembered for an hour)."""
    return sum(1 for _ in client.scan_iter(match=Keys.current().sent("*"), count=1000))


def test_worker_killed_mid_drain(data_redis: ChaosRedis, tmp_path: Path) -> None:
    """Fault 3: a worker SIGKILLed while it writes a large backlog, then a new worker: the
    dead worker's claim is replayed or acknowledged by cleanup, nothing twice."""
    with Stack(tmp_path, data_redis.url) as stack, data_redis.client() as client:
        web = stack.web("web")
        stack.beat("beat")
        load = Load([web.base], 3000, "worker-kill", article_pages).start()
        wait_for(lambda: redis_state(client)["pending_views"] >= 1500, "a backlog", 120)
        for attempt in range(5):
            before = processed_batches()
            worker = stack.worker(f"worker-{attempt}", PAGEVIEW_BATCH_SIZE="250")

            def writing(before: int = before) -> bool:
                return processed_batches() > before and redis_state(client)["claims"] > 0

            wait_for(writing, "the worker in the middle of the backlog", explain=stack.tails)
            worker.kill()
            if redis_state(client)["claims"] > 0:
                break  # killed with a claim open
        else:
            pytest.fail("never killed a worker holding a claim")
        left = redis_state(client)
        stack.worker("worker-new", PAGEVIEW_BATCH_SIZE="250")
        result, ledger = finish(stack, load, client)
        print(f"worker kill: state at the kill {left}")
        account(result, ledger, what="worker killed mid-drain")


def test_database_refuses_writes_then_comes_back(data_redis: ChaosRedis, tmp_path: Path) -> None:
    """Fault 4 (issue item 3): the database refuses writes for longer than five drain
    attempts (and five cleanup runs, which retry the stale claims). The outage must be
    waited out: nothing set aside, everything written once it is back."""
    with Stack(tmp_path, data_redis.url) as stack, data_redis.client() as client:
        web = stack.web("web")
        # A drain that waits the outage out inside its task still ends within seconds, so
        # that the drain tasks finished during the outage can be counted.
        stack.worker(
            "worker", PAGEVIEW_FLUSH_TIME_BUDGET="3", CHAOS_SQLITE_TIMEOUT=SQLITE_BUSY_TIMEOUT
        )
        stack.beat("beat")
        load = Load([web.base], 3000, "db-outage", article_pages).start()
        load.wait_answered(500)
        wait_for(lambda: read_ledger(client).stored > 0, "the first views written")
        with refusing_writes() as how:
            stack.wait_tasks(6)
            stack.wait_tasks(6, CLEANUP_TASK)
            during = read_ledger(client)
        print(f"db outage: {how}; during it {during}")
        result, ledger = finish(stack, load, client)
        account(result, ledger, what="database refusing writes")


def test_poison_page_counts_as_url_views(data_redis: ChaosRedis, tmp_path: Path) -> None:
    """Fault 5 (issue item 2): 3% of the load is a ListView of a model without a slug
    field at a <slug:slug> URL. Every view counts; the poison ones as URL views."""
    with Stack(tmp_path, data_redis.url) as stack, data_redis.client() as client:
        web = stack.web("web")
        stack.worker("worker")
        stack.beat("beat")
        load = Load([web.base], 3000, "poison", with_poison).start()
        result, ledger = finish(stack, load, client)
        poison = PageViewDaily.objects.filter(url__startswith="/chaos/category/")
        poison_views = poison.aggregate(total=Sum("views"))["total"] or 0
        print(f"poison: {poison_views} poison views stored of {result.ok_by_kind['poison']}")
        account(result, ledger, what="poison page")
        assert result.ok_by_kind["poison"] > 0
        assert poison_views == result.ok_by_kind["poison"]
        assert not poison.exclude(content_type=None).exists()
        assert set(poison.values_list("view_name", flat=True)) == {"chaos-category"}


def test_beat_doubled_and_two_workers(data_redis: ChaosRedis, tmp_path: Path) -> None:
    """Fault 6: two beats send every task twice, two workers drain at once: exact."""
    with Stack(tmp_path, data_redis.url) as stack, data_redis.client() as client:
        web = stack.web("web")
        workers = [stack.worker("worker-1"), stack.worker("worker-2")]
        beats = [stack.beat("beat-1"), stack.beat("beat-2")]
        load = Load([web.base], 2500, "doubled", article_pages).start()
        result, ledger = finish(stack, load, client)
        sent = [b.text().count("Sending due task process-pageview-buffer") for b in beats]
        drains = [w.text().count("tasks.process_pageview_buffer[") for w in workers]
        print(f"beat doubled: drain tasks sent by each beat {sent}, lines per worker {drains}")
        account(result, ledger, what="beat doubled, two workers")
        # Every beat's tasks ran (which worker takes a task is the broker's choice: one
        # may take them all; concurrent drains are tested by test_redis_pipeline).
        assert min(sent) >= 3 and sum(drains) >= 6, (sent, drains)


def test_uvicorn_sigterm_with_plain_asgi(data_redis: ChaosRedis, tmp_path: Path) -> None:
    """Fault 7 (issue item 1, Redis path): two uvicorn processes serving a plain
    get_asgi_application(); each in turn is SIGTERMed mid-load and started again while the
    other serves (a rolling restart, four times). Uvicorn re-raises the signal after its
    graceful shutdown: the views it still had queued for Redis, and those of the requests
    it finished during that shutdown (a quarter of the pages take 0.3 s), must not be
    lost."""
    with Stack(tmp_path, data_redis.url) as stack, data_redis.client() as client:
        # Micro-batches of half a second (the default is 0.05 s): a SIGTERM then always
        # finds views queued for Redis; the default makes a loss a matter of timing.
        ship = {"PAGEVIEW_SHIP_INTERVAL": "0.5"}
        webs = [stack.web(f"web-{n}", app=PLAIN_APP, **ship) for n in (1, 2)]
        stack.worker("worker")
        stack.beat("beat")
        load = Load([w.base for w in webs], 3600, "sigterm", with_slow_pages).start()
        load.wait_answered(400)
        codes = []
        for restart in range(RESTARTS):
            web = webs[restart % 2]
            web.send(signal.SIGTERM)
            codes.append(web.wait())
            load.wait_answered(load.answered + 100, f"while {web.name} is down")
            web.start()
            load.wait_answered(load.answered + 200, f"after {web.name} came back")
        result, ledger = finish(stack, load, client)
        print(f"uvicorn sigterm: exit codes {codes}")
        account(result, ledger, what="uvicorn SIGTERM, plain asgi.py")
