"""How fast ``drain.drain_redis`` moves buffered views from Redis into the database.

    .venv/bin/python -m bench.drain [--quick]

Redis is filled as the batchers fill it (``redis.shipping.build_shipment`` and the ``ship``
script, 500 views per shipment): 1,000,000 views over 10,000 pages of one day (quick:
50,000 over 500), with raw events, under a key prefix of its own (and a copy without
the raw events for the counts-only runs), copied (server-side COPY) to the package's keys
before every run. Then 1 or 2
worker processes, forked and released together, each run
``drain_redis(None)`` until Redis is empty; the time is from their release to the last
one's return. Every run checks that the database holds every view (the daily totals sum
to the number shipped, one raw row per view when raw rows are on) and that Redis holds no
view, claim or raw event any more.

Databases: PostgreSQL (BENCH_POSTGRES_URL), SQLite (a temporary file, reset from a
migrated copy before each run) and MariaDB/MySQL (BENCH_MYSQL_URL, default
``mysql://root@127.0.0.1:3306/bench``); the package's tables are emptied before each
run. One long-lived runner process per database takes the runs in turn, repetition by
repetition, so that the repetitions of every case are interleaved. The quick run drains
PostgreSQL only, once; SQLite and MariaDB drain fewer views in the full run (their per-view
cost is what the table compares; the full run must stay within about six minutes).

On PostgreSQL, each repetition also times the drain of the original 0.2.6
(bench/original.py: one RPOP, one JSON decode and one content type query per view, a bulk
INSERT per 100), by the same runner, 1 worker, timed and checked the same way, right
after our cases, so that issue #11's figures and 0.2.6's come from the same run. A few
thousand views/s at best (a query per view), it drains 1/ORIGINAL_SHARE of our views,
over the same pages, from a list filled afresh before each run (as its buffer task
filled it: one JSON element per view).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench.common import MYSQL_URL, PYTHON, ROOT, markdown_table, redis_url, subprocess_env
from bench.report import Section, spread

SHIPMENT = 500  # views per ship script call, as the batchers send them at most
FILLERS = 2  # processes shipping side by side while Redis is filled
# A busy machine (the other scenarios, or someone's test suite) must not make a run fail on
# the package's short Redis socket timeout: the claims it leaves would spoil the check.
REDIS_PATIENCE = {"PAGEVIEW_REDIS_SOCKET_TIMEOUT": "10"}
REPEATS = 3
TARGETS = {"postgresql": ">= 100,000 views/s raw, >= 300,000 counts-only"}


@dataclass(frozen=True)
class Size:
    views: int
    pages: int


FULL = {"postgresql": Size(1_000_000, 10_000)}
FULL_OTHERS = Size(200_000, 10_000)  # SQLite and MariaDB, within the run's budget
QUICK = {"postgresql": Size(50_000, 500)}
CASES = [(raw, workers) for raw in (True, False) for workers in (1, 2)]
# The 0.2.6-like drain's views: ours / this (quick: 1,000; full: 10,000), so that its 3
# repetitions add seconds (quick) or under a minute (full) at its 500-2,000 views/s.
ORIGINAL_SHARE = 100
ORIGINAL = ("postgresql", True, 0)  # its key in the results: raw rows, 0 = not ours


def run(quick: bool) -> Section:
    started = time.monotonic()
    redis = redis_url()  # a private server, unless BENCH_REDIS_URL names one to empty
    vendors = {"postgresql": os.environ.get("BENCH_POSTGRES_URL", "")}
    if not quick:
        vendors["sqlite"] = "sqlite"
        vendors["mysql"] = MYSQL_URL
    sizes = {v: (QUICK if quick else FULL).get(v, FULL_OTHERS) for v in vendors}
    if os.environ.get("BENCH_DRAIN_VIEWS"):  # a smaller run, to try the scenario out
        views = int(os.environ["BENCH_DRAIN_VIEWS"])
        sizes = {v: Size(views, max(views // 100, 1)) for v in vendors}
    fill_seconds = {size: _fill(size, redis) for size in set(sizes.values())}
    with tempfile.TemporaryDirectory(prefix="pageviews-drain-") as tmp:
        runners = {v: _Runner(v, url, tmp, redis) for v, url in vendors.items()}
        results: dict[tuple[str, bool, int], list[dict[str, Any]]] = {}
        try:
            for _ in range(1 if quick else REPEATS):
                for vendor, runner in runners.items():
                    for key, command in _commands(vendor, sizes[vendor]):
                        result = runner.ask(command)
                        results.setdefault(key, []).append(result)
                        print(f"drain {key} {command} -> {result}", file=sys.stderr)
        finally:
            for runner in runners.values():
                runner.close()
    return _section(results, sizes, fill_seconds, time.monotonic() - started)


def _commands(vendor: str, size: Size) -> list[tuple[tuple[str, bool, int], dict[str, Any]]]:
    """The runs of one repetition on ``vendor``, by their key in the results: our CASES,
    then (PostgreSQL) the 0.2.6-like drain."""
    commands: list[tuple[tuple[str, bool, int], dict[str, Any]]] = [
        (
            (vendor, raw, workers),
            {"raw": raw, "workers": workers, "template": _template(size, raw), "views": size.views},
        )
        for raw, workers in CASES
    ]
    if vendor == "postgresql":
        views = max(size.views // ORIGINAL_SHARE, 1)
        commands.append((ORIGINAL, {"original": True, "views": views, "pages": size.pages}))
    return commands


def _template(size: Size, raw: bool) -> str:
    """The key prefix of the filled buffer that a run of ``size`` copies."""
    return f"bench-{size.views}-{size.pages}-{'raw' if raw else 'counts'}"


def _fill(size: Size, redis: str) -> float:
    """Fill the templates of ``size``: with raw events by FILLERS processes shipping side by
    side, then counts-only as a copy of it without the raw events (the batchers' counts do
    not depend on PAGEVIEW_STORE_RAW). The seconds the filling took."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis, decode_responses=True)
    raw, counts = "{" + _template(size, True) + "}:", "{" + _template(size, False) + "}:"
    for prefix in (raw, counts):
        for key in client.scan_iter(prefix + "*", count=1000):
            client.unlink(key)
    prefix = json.dumps(_template(size, True))
    env = subprocess_env(BENCH_TRACKING="redis", PAGEVIEW_KEY_PREFIX=prefix, **REDIS_PATIENCE)
    share = -(-size.views // FILLERS // SHIPMENT) * SHIPMENT
    started = time.perf_counter()
    fillers = [
        subprocess.Popen(
            [PYTHON, "-m", "bench.drain", "--fill", str(start), str(min(start + share, size.views))]
            + [str(size.pages)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in range(0, size.views, share)
    ]
    for filler in fillers:
        _, err = filler.communicate()
        if filler.returncode:
            raise SystemExit(f"filling Redis failed:\n{err}")
    seconds = time.perf_counter() - started
    with client.pipeline(transaction=False) as pipe:
        for key in client.scan_iter(raw + "*", count=1000):
            if key != raw + "events":
                pipe.copy(key, counts + key[len(raw) :], replace=True)
        pipe.execute()
    client.close()
    return seconds


class _Runner:
    """A process configured for one database that runs the drains it is sent."""

    def __init__(self, vendor: str, url: str, tmp: str, redis: str) -> None:
        if vendor == "sqlite":
            url = f"sqlite:///{tmp}/drain.sqlite3"
        elif vendor == "postgresql" and not url:
            from bench.common import POSTGRES_URL

            url = POSTGRES_URL
        env = subprocess_env(BENCH_TRACKING="redis", BENCH_DATABASE_URL=url, **REDIS_PATIENCE)
        self.vendor = vendor
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bench.drain", "--runner"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.vendor} drain runner died (see its output above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def _section(
    results: dict[tuple[str, bool, int], list[dict[str, Any]]],
    sizes: dict[str, Size],
    fill_seconds: dict[Size, float],
    seconds: float,
) -> Section:
    names = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MariaDB"}
    rows = []
    headline = []
    original = _rates(results.get(ORIGINAL, []))
    for (vendor, raw, workers), runs in results.items():
        pages = sizes[vendor].pages
        if (vendor, raw, workers) == ORIGINAL:
            rows.append(_row(f"{names[vendor]}, 0.2.6-like", True, 1, runs, pages))
            continue
        rows.append(_row(names[vendor], raw, workers, runs, pages))
        if workers == 1:
            target = (
                (" (target >= 100,000)" if raw else " (target >= 300,000)")
                if vendor == "postgresql"
                else ""
            )
            if original and (vendor, raw) == ORIGINAL[:2]:
                target += f"; 0.2.6-like: {spread(original)} views/s"
            what = "raw rows" if raw else "counts only"
            headline.append(
                f"drain, {names[vendor]}, {what}, 1 worker: {spread(_rates(runs))} views/s{target}"
            )
    headers = [
        "database",
        "raw rows",
        "workers",
        "views / pages",
        "views/s, median (min-max)",
        "views/s per worker",
        "worker CPU us/view",
        "PostgreSQL server CPU us/view",
        "every view in the DB",
    ]
    fills = ", ".join(f"{s.views:,} views in {t:.1f} s" for s, t in fill_seconds.items())
    repeats = len(next(iter(results.values())))
    body = (
        markdown_table(headers, rows)
        + "\n\n"
        + f"{repeats} interleaved repetition{'s' * (repeats > 1)} of each case; "
        "PAGEVIEW_BATCH_SIZE "
        "100 (the default), PAGEVIEW_DRAIN_TRANSACTION_SIZE at its default. Time: from "
        "the workers' release to the last one's return; worker CPU is the drain "
        "processes' own (user + system); PostgreSQL server CPU is that of their "
        "connections' server processes (read from /proc). Redis filled as "
        f"the batchers fill it ({SHIPMENT} views per ship script call, {FILLERS} processes; "
        f"{fills}), then copied to the drained keys before each run. "
        "PostgreSQL, 0.2.6-like: the original 0.2.6's drain (`bench/original.py`: one "
        "RPOP, one JSON decode and one content type query per view, one bulk INSERT per "
        "100 views, into the same table), timed and checked the same way right after our "
        f"cases in each repetition, on 1/{ORIGINAL_SHARE} of our views (at its rate, ours "
        "would take minutes) over the same pages, from a list filled as its buffer task filled it "
        f"(one JSON element per view) before each run. Whole scenario: {seconds:.0f} s."
    )
    profiles = ["profiles/drain-before.txt", "profiles/drain-after.txt"]
    body += (
        "\n\nWhere a drain's time goes, stage by stage, before and after issue #11: "
        + " and ".join(f"[{p}]({p})" for p in profiles)
        + " (`bench/drain_profile.py`)."
    )
    return Section(title="Drain rate", body=body, headline=headline, files=profiles)


def _row(name: str, raw: bool, workers: int, runs: list[dict[str, Any]], pages: int) -> list[str]:
    """One case's row of the table: its repetitions' rates, CPU and check."""
    rates = _rates(runs)
    ok = all(r["ok"] for r in runs)
    return [
        name,
        "on" if raw else "off",
        str(workers),
        f"{runs[0]['views']:,} / {pages:,}",
        spread(rates),
        spread([rate / workers for rate in rates]),
        spread([r["cpu"] / r["views"] * 1e6 for r in runs], 1),
        _server_cpu(runs),
        "yes" if ok else "NO: " + "; ".join(r["problem"] for r in runs if not r["ok"]),
    ]


def _rates(runs: list[dict[str, Any]]) -> list[float]:
    return [r["views"] / r["seconds"] for r in runs]


def _server_cpu(runs: list[dict[str, Any]]) -> str:
    values = [r["server_cpu"] / r["views"] * 1e6 for r in runs]
    return "-" if any(math.isnan(v) for v in values) else spread(values, 1)


# --- In the subprocesses -------------------------------------------------------------


def fill(start: int, stop: int, pages: int) -> None:
    """Ship views ``start`` to ``stop`` as the batchers do, under the configured prefix."""
    import django

    django.setup()
    from collections import Counter

    from bench.common import realistic_event
    from django_pageviews.redis.client import get_client
    from django_pageviews.redis.scripts import ship
    from django_pageviews.redis.shipping import build_shipment

    client = get_client()
    now = time.time()
    for first in range(start, stop, SHIPMENT):
        views = range(first, min(first + SHIPMENT, stop))
        events = [realistic_event(i % pages, now) for i in views]
        keys, args = build_shipment(events, Counter()).script_args()
        ship(keys=keys, args=args, client=client)


def runner() -> None:
    """Run the drains read from stdin (one JSON command a line), one JSON result a line."""
    import django

    django.setup()
    from bench.drain_runner import Runner

    drains = Runner()
    for line in sys.stdin:
        print(json.dumps(drains.run(json.loads(line))), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fill"]:
        fill(*(int(n) for n in sys.argv[2:5]))
    elif sys.argv[1:] == ["--runner"]:
        runner()
    else:
        section = run(quick="--quick" in sys.argv[1:])
        print(f"## {section.title}\n\n{section.body}\n")
        print("\n".join(section.headline))
