"""Live most-viewed lists under flat traffic: how many rounds, how deep, how long Redis is
busy per SNAPSHOT_LISTS call (issue #11, decision 43).

    python -m bench.flat_reads [--quick]

A standalone tool (not part of ``python -m bench``). On PostgreSQL (``BENCH_FLAT_URL``,
default the database ``flat_bench`` of the machine's server, created and emptied) and a
private redis-server, in async mode:

- ``flat, apart``: 10,000 articles of 64 views each, stored yesterday; 200,000 other
  pages pending today, 1-5 views each (tens of thousands of ties at every count);
- ``flat, on stored``: the same, with the first 10,000 pending pages the stored articles
  (their totals 65-69: thousands of equal totals at the top);
- ``skewed``: bench/reads.py's data (10,000 articles, Zipf-like, 10 days) and its 200,000
  pending pages.

For each list read: the rounds, the depths of each round (database rows per list, Redis
entries per list, members asked), the time of each round, of the SNAPSHOT_LISTS calls
measured by Redis itself (SLOWLOG, every call logged), the entries the calls read, and
whether the read fell back to the stored counts (``read_error``). ``--quick``: 1,000
articles, 20,000 pending pages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import PYTHON, ROOT, markdown_table, subprocess_env  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_FLAT_URL", "postgres://postgres@127.0.0.1:5432/flat_bench")
STORED_VIEWS = 64
REPEATS = 3


def ship(totals: dict[Any, int]) -> None:
    """Pre-aggregated counts shipped as producers ship them (SHIP makes the lists)."""
    from collections import Counter

    from django_pageviews.redis.buffer import Shipment
    from django_pageviews.redis.client import get_client
    from django_pageviews.redis.scripts import ship as ship_script
    from django_pageviews.wire import count_field

    client = get_client()
    items = list(totals.items())
    for start in range(0, len(items), 1000):
        counts = Counter({count_field(d, t): n for (d, t), n in items[start : start + 1000]})
        keys, args = Shipment(counts, [], []).script_args()
        ship_script(keys=keys, args=args, client=client)


def make_flat(articles: int, pending: int, on_stored: bool) -> None:
    from datetime import timedelta

    from django.db import connection

    from bench.common import flush_redis, redis_client
    from bench.reads_stored import VIEW_NAME, StoredData
    from django_pageviews.events import PK, Target, current_day
    from django_pageviews.storage import write_batch

    data = StoredData(connection, articles)
    data.reset()
    today = current_day()

    def article(i: int) -> Target:
        return Target(f"/articles/{i}/", VIEW_NAME, "tests.article", PK, str(i))

    stored = {(today - timedelta(days=1), article(i)): STORED_VIEWS for i in range(1, articles + 1)}
    write_batch(uuid.uuid4().hex, [], stored)  # type: ignore[arg-type]
    flush_redis(redis_client())
    views: dict[Any, int] = {}
    for j in range(pending):
        if on_stored and j < articles:
            target = article(j + 1)
        else:
            target = Target(f"/new/{j}/", "new-page", "", "", "")
        views[(today, target)] = 1 + (j * 7919) % 5
    ship(views)


def make_skewed(articles: int, pending: int) -> None:
    from django.db import connection

    from bench.reads_pending import ship_pending
    from bench.reads_stored import StoredData

    data = StoredData(connection, articles)
    data.reset()
    data.days(0, 9)
    ship_pending(pending, articles)


def lists() -> dict[str, Callable[[], object]]:
    from django_pageviews.models import PageView
    from tests.models import Article

    return {
        "urls(10, days=7)": lambda: PageView.get_popular_urls(limit=10, days=7),
        "urls(10) all time": lambda: PageView.get_popular_urls(limit=10),
        "objects(10, days=7)": lambda: PageView.get_popular_objects(Article, limit=10, days=7),
        "objects(10) all time": lambda: PageView.get_popular_objects(Article, limit=10),
        "view names(5, days=7)": lambda: PageView.get_popular_view_names(limit=5, days=7),
    }


class Probe:
    """Records each round of ranking.top and each SNAPSHOT_LISTS call of one read."""

    def __init__(self) -> None:
        from django_pageviews import ranking, stored_tops
        from django_pageviews.redis import snapshots

        self.rounds: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.heads: list[int] = []
        original_round = ranking._round
        original_snapshot = snapshots.snapshot_lists
        original_head = stored_tops.StoredTop.head

        def round_(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original_round(*args, **kwargs)
            finally:
                self.rounds.append({"ms": (time.perf_counter() - started) * 1000})

        def snapshot(
            client: Any, prefix: str, first: str, last: str, k: int, ask: Any, *a: Any, **kw: Any
        ) -> Any:
            call: dict[str, Any] = {"k": k, "asked": len(ask)}
            self.calls.append(call)
            call["work"] = "failed"
            snap = original_snapshot(client, prefix, first, last, k, ask, *a, **kw)
            call["work"] = getattr(snap, "work", None)
            return snap

        def head(top: Any, depth: int, *args: Any, **kwargs: Any) -> Any:
            self.heads.append(depth)
            return original_head(top, depth, *args, **kwargs)

        ranking._round = round_  # type: ignore[assignment]
        snapshots.snapshot_lists = snapshot  # type: ignore[assignment]
        stored_tops.StoredTop.head = head  # type: ignore[method-assign]

    def clear(self) -> None:
        self.rounds.clear()
        self.calls.clear()
        self.heads.clear()


def slowlog(client: Any, sha: str) -> list[int]:
    """Microseconds of each SNAPSHOT_LISTS call of 0.1 ms or more since the last look, as
    Redis measured."""
    entries = client.slowlog_get(-1)
    client.slowlog_reset()
    durations = []
    for entry in reversed(entries):
        command = entry.get("command") or b""
        if isinstance(command, bytes):
            command = command.decode(errors="replace")
        if command.startswith("EVALSHA " + sha):
            durations.append(int(entry["duration"]))
    return durations


def measure(scenario: str) -> list[dict[str, Any]]:
    from django.test import override_settings

    from bench.common import redis_client
    from django_pageviews import stats
    from django_pageviews.redis.client import get_client
    from django_pageviews.redis.scripts import snapshot_lists

    probe = Probe()
    results = []
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True):
        get_client()  # the package's client (its scripts); Redis's own log read by another
        client = redis_client()
        # Calls of 0.1 ms or more: not the commands inside scripts (a few microseconds each),
        # whose logging would slow the scripts down.
        client.config_set("slowlog-log-slower-than", 100)
        client.config_set("slowlog-max-len", 100_000)
        for name, read in lists().items():
            for repeat in range(REPEATS):
                probe.clear()
                slowlog(client, "")
                errors = stats.snapshot().get(stats.READ_ERROR, 0)
                started = time.perf_counter()
                answer = read()
                total = (time.perf_counter() - started) * 1000
                time.sleep(0.6)  # a script still running after a client's timeout ends
                lua = slowlog(client, snapshot_lists.sha or "?")
                results.append(
                    {
                        "scenario": scenario,
                        "list": name,
                        "repeat": repeat,
                        "ms": total,
                        "rounds": len(probe.rounds),
                        "round_ms": [r["ms"] for r in probe.rounds],
                        "db_depths": list(probe.heads),
                        "redis_k": [c["k"] for c in probe.calls],
                        "asked": [c["asked"] for c in probe.calls],
                        "work": [c["work"] for c in probe.calls],
                        "lua_us": lua,
                        "read_error": stats.snapshot().get(stats.READ_ERROR, 0) - errors,
                        "answer": [str(row[1]) for row in answer][:3],
                    }
                )
    return results


def case(scenario: str, quick: bool) -> list[dict[str, Any]]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    articles, pending = (1_000, 20_000) if quick else (10_000, 200_000)
    if scenario == "skewed":
        make_skewed(articles, pending)
    else:
        make_flat(articles, pending, on_stored=scenario == "flat, on stored")
    return measure(scenario)


def ensure_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


SCENARIOS = ("flat, apart", "flat, on stored", "skewed")


def table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        if r["repeat"] != REPEATS - 1:
            continue
        rows.append(
            [
                r["scenario"],
                r["list"],
                f"{r['ms']:.1f}",
                r["rounds"],
                " ".join(str(d) for d in r["db_depths"]),
                " ".join(str(k) for k in r["redis_k"]),
                " ".join(str(a) for a in r["asked"]),
                " ".join(str(w) for w in r["work"]) if any(r["work"]) else "-",
                " ".join(f"{u / 1000:.1f}" for u in r["lua_us"]),
                f"{max(r['lua_us'], default=0) / 1000:.1f}",
                r["read_error"],
            ]
        )
    headers = [
        "scenario",
        "list",
        "ms",
        "rounds",
        "db depth per round",
        "lists depth per call (k; after decision 43: per set)",
        "members asked",
        "work per call",
        "Lua ms per call",
        "max Lua ms",
        "read_error",
    ]
    return markdown_table(headers, rows)


def main() -> None:
    quick = "--quick" in sys.argv
    if "--case" in sys.argv:
        scenario = sys.argv[sys.argv.index("--case") + 1]
        print(json.dumps(case(scenario, quick)))
        return
    ensure_database()
    results: list[dict[str, Any]] = []
    only = os.environ.get("BENCH_FLAT_ONLY")
    for scenario in SCENARIOS:
        if only and scenario != only:
            continue
        args = [PYTHON, "-m", "bench.flat_reads", "--case", scenario] + (
            ["--quick"] if quick else []
        )
        env = subprocess_env(BENCH_DATABASE_URL=DATABASE_URL, BENCH_TRACKING="redis")
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{scenario} failed:\n{done.stderr[-3000:]}")
        results += json.loads(done.stdout.strip().splitlines()[-1])
    if out := os.environ.get("BENCH_FLAT_JSON"):
        Path(out).write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
