"""Cost per view at 1k, 10k, 100k and 1M views per minute: linear or better.

The Redis path end to end, at a steady rate for SECONDS per rate: a web process
(bench/webproc.py, the middleware without the HTTP server, visitors as in bench/memory.py,
the throttle at its default) ships to a private Redis, and a drain worker
(``drain_redis`` in a loop, a beat every second) writes to PostgreSQL. The cost of a rate
is the CPU time, from the start of its load until the worker has written its last view,
of: the web process's tracking (its CPU less that of the same requests untracked,
measured once at 100k/min), the worker, redis-server (INFO ``used_cpu_*``) and the
worker's PostgreSQL backend (/proc/<pid>/schedstat). Idle costs (the worker's polling,
the batcher's timers) are counted too, which is why a quiet site pays more per view.
A rate the web process cannot reach on this machine is run as fast as it goes; the
achieved rate is shown.

0.2.6-like: the same rates and the same accounting for the original 0.2.6's Redis path,
in the same run: a web process (bench/webproc.py with BENCH_TRACKING ``redis-list``,
bench/baseline.py) whose SessionMiddleware and 0.2.6-like middleware throttle through the
session (a session row saved per new visitor, as every view here is) and LPUSH one JSON
object per view (then an LLEN), and a worker running bench/original.py's drain (an RPOP
and a JSON decode per view, a bulk INSERT per 100; these pages are of no object, so no
content type query). Its web column is the session middleware and the baseline, less the
same requests untracked; its PostgreSQL column adds the web process's backend (the
session saves) to the worker's. The Celery message that carried each view to 0.2.6's
buffer task, and that task's dispatch, are not counted: a lower bound of 0.2.6's cost.
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
from bench.procs import Child, cpu_seconds
from bench.report import Section, spread

PER_MINUTE = (1_000, 10_000, 100_000, 1_000_000)
BASELINE_PER_MINUTE = 100_000
SECONDS = {False: 6.0, True: 0.8}
REPEATS = {False: 3, True: 1}
# 0.2.6-like: shorter and fewer, to keep the run within ~90 s more (labelled in the body).
ORIGINAL_SECONDS = {False: 4.0, True: 0.5}
ORIGINAL_REPEATS = {False: 3, True: 1}
ORIGINAL = "0.2.6-like"
ORIGINAL_WARMUP = 200  # no bot check to warm: connections and code only
THROTTLE_SECONDS = "20"  # the package's default
WARMUP = 2_500  # views first: every user agent seen (webproc.AGENTS), clients connected
STALL = 60.0  # seconds without a view written before the worker is declared stuck
LINEAR = 1.10  # "linear or better": per-view cost at a rate within 10 % of the rate below


def _env(mode: str) -> dict[str, str]:
    return subprocess_env(
        BENCH_DATABASE_URL=POSTGRES_URL,
        BENCH_TRACKING=mode,
        PAGEVIEW_THROTTLE_SECONDS=THROTTLE_SECONDS,
    )


def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def one_rate(
    per_minute: int, seconds: float, web: Child, worker: Child, state: dict[str, Any]
) -> dict[str, float]:
    client = redis_client()
    backend = state["backend"]
    before = (cpu_seconds(worker.process.pid), redis_cpu(client), _backend_cpu(backend))
    load = web.ask(f"{per_minute / 60:.4f} {seconds} tracked")
    written(worker, sent(load["stats"]))
    after = (cpu_seconds(worker.process.pid), redis_cpu(client), _backend_cpu(backend))
    client.close()
    views = load["ran"]
    return {
        "per_minute": views / seconds * 60,
        "views": views,
        "web": load["cpu"] / views - state["baseline"],
        "worker": (after[0] - before[0]) / views,
        "redis": (after[1] - before[1]) / views,
        "postgres": (after[2] - before[2]) / views,
    }


def written(worker: Child, shipped: int) -> None:
    """Wait until the worker has written ``shipped`` views, however long it takes while it
    makes progress (a busy machine drains slowly); fail when it stalls for STALL s."""
    last = -1
    while (now := (worker.last("drained") or {"drained": 0})["drained"]) < shipped:
        if now == last:
            raise RuntimeError(f"the worker stalled at {now:,} of {shipped:,} views")
        last = now
        worker.wait_for("drained", lambda n: n >= shipped, STALL)


def sent(stats: dict[str, int]) -> int:
    """The views a web process has sent to Redis: shipped (ours) or pushed (0.2.6-like)."""
    return stats.get("shipped", stats.get("pushed", 0))


def _backend_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _backends(*children: Child) -> list[int]:
    """The PostgreSQL backends the children said they use (none elsewhere)."""
    said = [child.last("backend") for child in children]
    return [line["backend"] for line in said if line is not None]


def measure(quick: bool) -> dict[str, dict[int, list[dict[str, float]]]]:
    return {
        "ours": series("redis", [], WARMUP, SECONDS[quick], REPEATS[quick]),
        ORIGINAL: series(
            "redis-list",
            ["--original"],
            ORIGINAL_WARMUP,
            ORIGINAL_SECONDS[quick],
            ORIGINAL_REPEATS[quick],
        ),
    }


def series(
    mode: str, drain_args: list[str], warmup: int, seconds: float, repeats: int
) -> dict[int, list[dict[str, float]]]:
    """Every rate, ``repeats`` times interleaved, for a web process of BENCH_TRACKING
    ``mode`` and a worker given ``drain_args``; key 0: the untracked cost per view."""
    client = redis_client()
    flush_redis(client)  # the private server's benchmark database (common.redis_url)
    client.close()
    web = Child("web", _env(mode), "--views", "0", "--warmup", str(warmup))
    worker = Child("drain", _env(mode), "--views", str(10**9), "--every", str(10**9), *drain_args)
    results: dict[int, list[dict[str, float]]] = {r: [] for r in PER_MINUTE}
    try:
        if not web.wait_for("warm", lambda _: True, 120):
            raise RuntimeError("the web process did not warm up")
        written(worker, sent((web.last("warm") or {"warm": {}})["warm"]))
        if drain_args:  # a 0.2.6-like web process says its backend after its warm-up
            web.wait_for("backend", lambda _: True, 30)
        off = web.ask(f"{BASELINE_PER_MINUTE / 60:.4f} {seconds} untracked")
        state: dict[str, Any] = {
            "backend": _backends(worker, web),
            "baseline": off["cpu"] / off["ran"],
        }
        for _ in range(repeats):
            for per_minute in PER_MINUTE:  # interleaved: each repeat runs every rate
                results[per_minute].append(one_rate(per_minute, seconds, web, worker, state))
        web.close_input()
        web.finish()
    finally:
        web.stop()
        worker.stop()
    results[0] = [{"baseline_us": state["baseline"] * 1e6}]
    return results


def table(
    results: dict[int, list[dict[str, float]]], seconds: float, repeats: int
) -> tuple[str, list[float], str]:
    """One series' table with its preamble, the median total per rate, and the verdict."""
    baseline = results.pop(0)[0]["baseline_us"]
    parts = ("web", "worker", "redis", "postgres")
    rows, totals = [], []
    for per_minute, runs in results.items():
        total = [sum(r[p] for p in parts) * 1e6 for r in runs]
        totals.append(sorted(total)[len(total) // 2])
        rows.append(
            [
                fmt(per_minute),
                spread([r["per_minute"] for r in runs]),
                spread([r["views"] for r in runs]),
                *[spread([r[p] * 1e6 for r in runs], 1) for p in parts],
                spread(total, 1),
                spread([t * r["per_minute"] / 1e6 for t, r in zip(total, runs, strict=True)], 2),
            ]
        )
    steps = [b <= a * LINEAR for a, b in zip(totals, totals[1:], strict=False)]
    verdict = "linear or better" if all(steps) else "WORSE than linear"
    headers = ["views/min asked", "achieved", "views", "web µs/view", "worker µs/view"]
    headers += ["Redis µs/view", "PostgreSQL µs/view", "total µs/view", "CPU s per minute"]
    text = (
        f"{seconds:g} s per rate, {repeats} interleaved run{'s' * (repeats > 1)} per rate, "
        "median (min-max). CPU µs per view; the web process's column is its tracking "
        f"only (its requests untracked cost {baseline:.1f} µs/view, subtracted)."
    )
    return f"{text}\n\n{markdown_table(headers, rows)}", totals, verdict


def section(results: dict[str, dict[int, list[dict[str, float]]]], quick: bool) -> Section:
    ours, totals, verdict = table(results["ours"], SECONDS[quick], REPEATS[quick])
    theirs, their_totals, their_verdict = table(
        results[ORIGINAL], ORIGINAL_SECONDS[quick], ORIGINAL_REPEATS[quick]
    )
    ratios = " / ".join(f"{t / o:,.1f}" for o, t in zip(totals, their_totals, strict=True))
    body = "\n\n".join(
        [
            ours,
            f"Cost per view from one rate to the next: **{verdict}** (each within "
            f"{LINEAR:.2f} times the rate below, or less).",
            f"**{ORIGINAL}** (the original 0.2.6's Redis path, below): {theirs}",
            f"0.2.6-like cost per view from one rate to the next: {their_verdict}; at each "
            f"rate, {ratios} times ours.",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
        ]
    )
    headline = [
        "cost per view at 1k / 10k / 100k / 1M views per minute: "
        + " / ".join(f"{t:,.0f}" for t in totals)
        + f" µs CPU ({verdict}; target: linear or better); {ORIGINAL}: "
        + " / ".join(f"{t:,.0f}" for t in their_totals)
        + " µs"
    ]
    return Section("Scaling: cost per view from 1k to 1M views per minute", body, headline)


def run(quick: bool) -> Section:
    return section(measure(quick), quick)


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
