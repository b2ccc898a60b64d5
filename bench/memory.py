"""RSS of a web process and of a drain worker over a million views: flat after warm-up.

A web process (bench/webproc.py: Django ASGI requests through PageViewMiddleware on a
uvloop loop, without the HTTP server, whose memory is not the package's) takes VIEWS
views from a realistic mix of visitors, the throttle at its default, in-process
(its writer thread writes to PostgreSQL) and then on the Redis path, while a drain
worker (``drain_redis`` in a loop, a beat every second) writes them to PostgreSQL; the
worker starts once 30,000 views wait (a full run), so that it drains whole transactions
within its warm-up, as it does at the end (the web process's last shipments). Each
process reports its RSS every VIEWS/100 views. Before its first view (a full run), a web process
brings every cache it has to its bound (bench/caches.py: the throttle table, the user
agents' verdicts, addresses), with entries as large as real ones can be: a site's traffic
fills them in hours or days, a benchmark's in none of its time. What a process still
keeps per view then shows as growth after the warm-up: the first quarter of the views,
and for a web process at least its first PAGEVIEW_THROTTLE_SECONDS (by then the throttle
table holds the views' keys, no longer the fill's). A process that served less than a
quarter of its views after its warm-up is "too short to tell" (a quick run; a slow or
busy machine).
A web process's last reading is taken after its last view, before its shutdown ships or
writes what it still holds; the RSS after that shutdown is shown next to it, as the
allocations of one final shipment are not memory kept per view.
One run per process: RSS is a level read 100 times along the run, not a rate to repeat.
The bytes each cache holds at its bound are measured in a process of their own
(``python -m bench.caches``: tracemalloc, each cache filled in turn).

0.2.6-like, in the same run: a web process doing what the original 0.2.6 did by default
(its synchronous path; its async mode needed Celery and Redis, and 0.2.x switched it on
only when Celery was installed): bench/baseline.py's SyncInsertMiddleware behind Django's
SessionMiddleware, so a session saved and a PageView INSERTed per view, as every view here
is of a new visitor. It has no cache to fill, and is given ORIGINAL_SECONDS rather than
the views: at a session save and an INSERT per view it serves a few hundred views a
second here, so its row shows the views it managed. Then 0.2.6's drain worker
(bench/original.py: an RPOP, a JSON decode and a content type query per view, a bulk
INSERT per 100) over ORIGINAL_DRAINED views its buffer task would have pushed (article
views of the same 10,000 pages, one JSON list element each), filled before it starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.common import (
    POSTGRES_URL,
    PYTHON,
    ROOT,
    flush_redis,
    fmt,
    markdown_table,
    redis_client,
    subprocess_env,
)
from bench.procs import Child
from bench.report import Section

VIEWS = {False: 1_000_000, True: 100_000}
SECONDS = {False: 100.0, True: 3.0}  # per web process: what is not served by then is not
SAMPLES = 100  # RSS readings asked per process (the table shows about ROWS of them)
ROWS = 10
WARM_UP = 0.25
FLAT_MB = 2.0  # below this, or 3 %, growth is noise (allocator arenas, GC timing)
IN_PROCESS = "web, in-process"
THROTTLE_SECONDS = "20"  # the package's default (bench.settings sets 0 for load tests)
# A busy site's batch (README, "Performance tuning"): at the default 100, the in-process
# writer's commits bound the web process to a few thousand views/s, too few to get past
# the throttle table's warm-up within the time a benchmark has.
BATCH_SIZE = "1000"
# Views shipped before the drain worker starts (a full run): 3 of its transactions.
HEAD_START = {False: 30_000, True: 0}
ORIGINAL = "web, 0.2.6-like"
ORIGINAL_WORKER = "0.2.6-like drain worker"
ORIGINAL_SECONDS = {False: 45.0, True: 2.0}
ORIGINAL_EVERY = {False: 200, True: 20}  # views between readings: it serves few
ORIGINAL_DRAINED = {False: 20_000, True: 1_000}


def _env(mode: str) -> dict[str, str]:
    return subprocess_env(
        BENCH_DATABASE_URL=POSTGRES_URL,
        BENCH_TRACKING=mode,
        PAGEVIEW_THROTTLE_SECONDS=THROTTLE_SECONDS,
        PAGEVIEW_BATCH_SIZE=BATCH_SIZE,
    )


def reset(mode: str) -> None:
    Child("reset", _env(mode), "--views", "0").finish(120)
    client = redis_client()
    flush_redis(client)
    client.close()


def cache_bytes() -> dict[str, Any]:
    """What ``python -m bench.caches`` measures: each cache at its bound, in bytes."""
    found = subprocess.run(
        [PYTHON, "-m", "bench.caches", "--json"],
        env=subprocess_env(),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    result: dict[str, Any] = json.loads(found.stdout)
    return result


def measure(quick: bool) -> dict[str, Any]:
    views, seconds = VIEWS[quick], SECONDS[quick]
    every = views // SAMPLES
    args = ["--views", str(views), "--seconds", str(seconds), "--every", str(every)]
    if not quick:  # a quick run is too short to tell growth from warm-up anyway
        args.append("--fill-caches")
    runs: dict[str, Any] = {}
    caches: dict[str, Any] = {}
    reset("inprocess")
    web = Child("web", _env("inprocess"), *args)
    done = web.finish()
    done["unfilled"] = (web.last("unfilled") or {}).get("unfilled")
    runs[IN_PROCESS] = (web.samples(), done)
    caches[IN_PROCESS] = done.get("caches", {})
    reset("redis")
    web = Child("web", _env("redis"), *args)
    # The worker starts HEAD_START views behind: its first drains are whole transactions
    # (PAGEVIEW_DRAIN_TRANSACTION_SIZE records, the most it holds at once), within its
    # warm-up. Started with the web process, it kept up with smaller ones until the web
    # process's last shipments, whose backlog it then drained in whole transactions: a
    # one-time step of 3 MB at the end (measured), read as growth.
    web.wait_for("views", lambda n: n >= HEAD_START[quick], 600)
    worker = Child("drain", _env("redis"), "--views", str(views), "--every", str(every))
    try:
        done = web.finish()
        done["unfilled"] = (web.last("unfilled") or {}).get("unfilled")
        runs["web, Redis path"] = (web.samples(), done)
        caches["web, Redis path"] = done.get("caches", {})
        shipped = done["stats"].get("shipped", 0)
        drained = worker.wait_for("drained", lambda n: n >= shipped, seconds + 60)
    finally:
        worker.stop()
    last = worker.last("drained") or {"drained": 0}
    written = {"written": last["drained"], "left in Redis when stopped": shipped - last["drained"]}
    runs["drain worker"] = (worker.samples(), {"stats": written, "all": drained})
    runs.update(measure_original(quick))
    # Quick: no time for the fill under tracemalloc; a full run measures the bytes.
    sized = None if quick else cache_bytes()
    result = {"views": views, "every": every, "runs": runs, "caches": caches, "sized": sized}
    return result | {"quick": quick}


def measure_original(quick: bool) -> dict[str, Any]:
    """The 0.2.6-like web process (sync-insert) and drain worker, one after the other."""
    runs: dict[str, Any] = {}
    every = ORIGINAL_EVERY[quick]
    reset("sync-insert")
    args = ["--views", str(VIEWS[quick]), "--seconds", str(ORIGINAL_SECONDS[quick])]
    web = Child("web", _env("sync-insert"), *args, "--every", str(every))
    done = web.finish()
    runs[ORIGINAL] = (web.samples(), done)
    reset("redis")
    views = ORIGINAL_DRAINED[quick]
    worker = Child(
        "drain",
        _env("redis"),
        "--views",
        str(views),
        "--every",
        str(views // 100),
        "--original",
        "--fill",
    )
    done = worker.finish()
    runs[ORIGINAL_WORKER] = (worker.samples(), {"stats": {"written": done["views"]}})
    return runs


def growth(name: str, samples: list[dict[str, Any]]) -> tuple[float, float, int, str]:
    """RSS MB after warm-up, RSS MB at the end, the views between them, and the verdict."""
    reached = samples[-1]["views"]
    # A web process's throttle table holds the keys of its fill for THROTTLE_SECONDS.
    seconds = float(THROTTLE_SECONDS) if name.startswith("web") else 0.0
    warm = next(
        (s for s in samples if s["views"] >= reached * WARM_UP and s["t"] >= seconds),
        samples[-1],
    )
    start, end = warm["rss"] / 2**20, samples[-1]["rss"] / 2**20
    if reached - warm["views"] < reached * WARM_UP:
        verdict = "too short to tell"
    else:
        verdict = "flat" if end - start < max(FLAT_MB, 0.03 * start) else "GROWS"
    return start, end, reached - warm["views"], verdict


def section(result: dict[str, Any]) -> Section:
    quick = result["quick"]
    runs = result["runs"]
    names = list(runs)
    theirs = [ORIGINAL, ORIGINAL_WORKER]
    ours = [name for name in names if name not in theirs]
    summary, headline = [], []
    for name in names:
        samples, done = runs[name]
        warm, end, span, verdict = growth(name, samples)
        counters = done.get("stats", {})
        summary.append(
            [
                name,
                fmt(samples[-1]["views"]),
                fmt(done.get("served_seconds", samples[-1]["t"]), 1),
                fmt(warm, 1),
                fmt(end, 1),
                f"{end - warm:+.1f}",
                verdict,
                fmt(done["shutdown_rss"] / 2**20, 1) if "shutdown_rss" in done else "-",
                ", ".join(f"{k} {fmt(v)}" for k, v in sorted(counters.items())) or "-",
            ]
        )
        unfilled = done.get("unfilled")
        start = f"{samples[0]['rss'] / 2**20:.1f} MB at start"
        if unfilled:
            start = f"{unfilled / 2**20:.1f} MB at start, {start[:-9]} with its caches full"
        target = "" if name in theirs else "; target: flat"
        headline.append(
            f"RSS, {name}: {start}, {warm:.1f} after "
            f"warm-up, {end:.1f} after {span:,} more views ({verdict}{target})"
        )
    caches, held = cache_table(result)
    headline += held
    body = "\n\n".join(
        [
            f"{result['views']:,} views asked of each web process (fewer when its time ran "
            "out), a realistic mix of visitors, the throttle at its default, "
            f"PAGEVIEW_BATCH_SIZE {BATCH_SIZE}, PostgreSQL; the 0.2.6-like web process "
            f"given {ORIGINAL_SECONDS[quick]:g} s, its drain worker "
            f"{ORIGINAL_DRAINED[quick]:,} views (below). "
            "RSS in MB, by views so far (for the worker: views written).",
            by_views(runs, ours, result["every"]),
            "The 0.2.6-like processes, by views so far (it serves and drains fewer):\n\n"
            + by_views(runs, [n for n in theirs if n in runs], ORIGINAL_EVERY[quick]),
            markdown_table(
                [
                    "process",
                    "views",
                    "seconds",
                    "RSS after warm-up",
                    "RSS at end",
                    "MB",
                    "verdict",
                    "RSS after shutdown",
                    "counters",
                ],
                summary,
            ),
            caches,
            (__doc__ or "").split("\n\n", 1)[1].strip(),
        ]
    )
    return Section("Memory of a web process and a worker", body, headline)


def by_views(runs: dict[str, Any], names: list[str], step: int) -> str:
    """RSS in MB of each named process, about ROWS rows by views so far (multiples of
    ``step``, the readings' interval)."""
    reached = max(runs[name][0][-1]["views"] for name in names)
    every = max(step, reached // ROWS // step * step)
    buckets: dict[int, dict[str, float]] = {}
    for name in names:
        for s in runs[name][0]:
            buckets.setdefault(s["views"] // every * every, {}).setdefault(name, s["rss"] / 2**20)
    rows = [
        [fmt(v), *[fmt(buckets[v][n], 1) if n in buckets[v] else "-" for n in names]]
        for v in sorted(buckets)
    ]
    return markdown_table(["views", *names], rows)


def cache_table(result: dict[str, Any]) -> tuple[str, list[str]]:
    """The caches of a web process: bound, entries at the end of each run, bytes at the
    bound (a full run); and the headline line of their total."""
    runs = result["caches"]
    sized = result.get("sized") or {}
    measured = {row["name"]: row for row in sized.get("caches", [])}
    names = list(next(iter(runs.values()), {}))
    rows = []
    for name in names:
        bound, holds = next(iter(runs.values()))[name][1:]
        at_bound = measured.get(name)
        rows.append(
            [
                f"`{name}`",
                holds,
                fmt(bound),
                *[fmt(runs[mode][name][0]) if name in runs[mode] else "-" for mode in runs],
                fmt(at_bound["bytes"] / 2**20, 2) if at_bound else "-",
            ]
        )
    table = markdown_table(
        [
            "cache",
            "an entry",
            "bound",
            *[f"entries at end, {mode}" for mode in runs],
            "MB at bound",
        ],
        rows,
    )
    text = [
        "Every cache of a web process, filled to its bound before the first view "
        "(bench/caches.py). Entries at end: what the views left in it (the throttle table "
        "holds the keys of the last PAGEVIEW_THROTTLE_SECONDS; the views' 2,003 user "
        "agents and 5,003 addresses are fewer than the bounds, so the fill's entries stay). "
        + (
            "MB at bound: traced by tracemalloc in a process of its own, user agents of "
            "512 characters (the longest kept) and IPv6 addresses."
            if measured
            else "MB at bound: measured by a full run (`python -m bench.caches`)."
        ),
        table,
    ]
    headline = []
    if measured:
        total = sum(row["bytes"] for row in measured.values()) / 2**20
        throttle = measured.get("throttle.throttle", {}).get("bytes", 0) / 2**20
        waiting = sized["event_bytes"]
        bounds = ", ".join(
            f"{name} (default {fmt(n)}): {fmt(n * waiting / 2**20, 1)} MB"
            for name, n in sized["buffers"].items()
        )
        text.append(
            f"In all, {total:.1f} MB at the bounds, the throttle table {throttle:.1f} MB of "
            f"them. Views waiting to be shipped or written are bounded by settings, not by "
            f"a cache: {waiting:.0f} bytes each, so at most {bounds}; they stay near empty "
            "while Redis and the database keep up."
        )
        headline.append(
            f"caches of a web process at their bounds: {total:.1f} MB, of which the "
            f"throttle table {throttle:.1f} MB"
        )
    return "\n\n".join(text), headline


def run(quick: bool) -> Section:
    return section(measure(quick))


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
