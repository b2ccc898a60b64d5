"""RSS of a web process and of a drain worker over a million views: flat after warm-up.

A web process (bench/webproc.py: Django ASGI requests through PageViewMiddleware on a
uvloop loop, without the HTTP server, whose memory is not the package's) takes VIEWS
views from a realistic mix of visitors, the throttle at its default, in-process
(its writer thread writes to PostgreSQL) and then on the Redis path, while a drain
worker (``drain_redis`` in a loop, a beat every second) writes them to PostgreSQL. Each
process reports its RSS every VIEWS/100 views. Whatever a process keeps per view
(throttle table, caches, buffers) shows as growth after the warm-up: the first quarter of
the views, and for a web process at least the first 200,000 (its throttle table, in both
modes, keeps each new visitor until it holds its bound, throttle.MAX_ENTRIES). A process
that served less than a quarter of its views after its warm-up is "too short to tell" (a
quick run; a slow or busy machine).
One run per process: RSS is a level read 100 times along the run, not a rate to repeat.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.common import (
    POSTGRES_URL,
    flush_redis,
    fmt,
    markdown_table,
    redis_client,
    subprocess_env,
)
from bench.procs import Child
from bench.report import Section
from django_pageviews.throttle import MAX_ENTRIES

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


def measure(quick: bool) -> dict[str, Any]:
    views, seconds = VIEWS[quick], SECONDS[quick]
    every = views // SAMPLES
    args = ["--views", str(views), "--seconds", str(seconds), "--every", str(every)]
    runs: dict[str, Any] = {}
    reset("inprocess")
    web = Child("web", _env("inprocess"), *args)
    done = web.finish()
    runs[IN_PROCESS] = (web.samples(), done)
    reset("redis")
    worker = Child("drain", _env("redis"), "--views", str(views), "--every", str(every))
    try:
        web = Child("web", _env("redis"), *args)
        done = web.finish()
        runs["web, Redis path"] = (web.samples(), done)
        shipped = done["stats"].get("shipped", 0)
        drained = worker.wait_for("drained", lambda n: n >= shipped, seconds + 60)
    finally:
        worker.stop()
    last = worker.last("drained") or {"drained": 0}
    written = {"written": last["drained"], "left in Redis when stopped": shipped - last["drained"]}
    runs["drain worker"] = (worker.samples(), {"stats": written, "all": drained})
    return {"views": views, "every": every, "runs": runs}


def growth(name: str, samples: list[dict[str, Any]]) -> tuple[float, float, int, str]:
    """RSS MB after warm-up, RSS MB at the end, the views between them, and the verdict."""
    reached = samples[-1]["views"]
    # A web process's throttle table keeps each new visitor until it holds MAX_ENTRIES.
    warm_up = max(reached * WARM_UP, MAX_ENTRIES if name.startswith("web") else 0)
    warm = next((s for s in samples if s["views"] >= warm_up), samples[-1])
    start, end = warm["rss"] / 2**20, samples[-1]["rss"] / 2**20
    if reached - warm["views"] < reached * WARM_UP:
        verdict = "too short to tell"
    else:
        verdict = "flat" if end - start < max(FLAT_MB, 0.03 * start) else "GROWS"
    return start, end, reached - warm["views"], verdict


def section(result: dict[str, Any]) -> Section:
    runs = result["runs"]
    names = list(runs)
    reached = max(runs[name][0][-1]["views"] for name in names)
    every = max(result["every"], reached // ROWS // result["every"] * result["every"])
    buckets: dict[int, dict[str, float]] = {}
    for name in names:
        for s in runs[name][0]:
            buckets.setdefault(s["views"] // every * every, {}).setdefault(name, s["rss"] / 2**20)
    rows = [
        [fmt(v), *[fmt(buckets[v][n], 1) if n in buckets[v] else "-" for n in names]]
        for v in sorted(buckets)
    ]
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
                ", ".join(f"{k} {fmt(v)}" for k, v in sorted(counters.items())) or "-",
            ]
        )
        headline.append(
            f"RSS, {name}: {samples[0]['rss'] / 2**20:.1f} MB at start, {warm:.1f} after "
            f"warm-up, {end:.1f} after {span:,} more views ({verdict}; target: flat)"
        )
    body = "\n\n".join(
        [
            f"{result['views']:,} views asked of each web process (fewer when its time ran "
            "out), a realistic mix of visitors, the throttle at its default, "
            f"PAGEVIEW_BATCH_SIZE {BATCH_SIZE}, PostgreSQL. "
            "RSS in MB, by views so far (for the worker: views written).",
            markdown_table(["views", *names], rows),
            markdown_table(
                [
                    "process",
                    "views",
                    "seconds",
                    "RSS after warm-up",
                    "RSS at end",
                    "MB",
                    "verdict",
                    "counters",
                ],
                summary,
            ),
            (__doc__ or "").split("\n\n", 1)[1].strip(),
        ]
    )
    return Section("Memory of a web process and a worker", body, headline)


def run(quick: bool) -> Section:
    return section(measure(quick))


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
