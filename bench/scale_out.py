"""Scaling out: drain throughput with 1, 2 and 4 worker processes and the buffer in 1 or 3
shards of a local Redis Cluster; request overhead with 1 and 2 uvicorn workers.

    python -m bench.scale_out [--quick]

Drain. A Redis Cluster of three primaries and three replicas on loopback
(tests/redis_cluster.py, the cluster tests' own), PAGEVIEW_REDIS_CLUSTER on. For each shard
count the buffer is filled once, as the batchers fill it (bench/drain.py's filler, 500
views per shipment, shipments going round the shards), under a key prefix of its own; before
every run its keys are copied to the package's (DUMP and RESTORE: a key of another hash tag
may live on another node, where COPY cannot reach). Then 1, 2 or 4 forked worker processes,
released together, each run ``drain_redis(None)`` until the buffer is empty (each drain visits
every shard, starting at a shard of its own), writing to PostgreSQL (BENCH_POSTGRES_URL) with
raw rows, the default. Every run checks that the daily totals hold every view, one raw row
each, and that no shard holds a view, raw event or claim. Runs are interleaved: repetition by
repetition, every (shards, workers) case in turn.

Requests. uvicorn (uvloop, httptools) with ``--workers 1`` and ``--workers 2`` serving the
async view, untracked and on the Redis path (one Redis server), a Celery worker draining;
wrk as in bench/throughput.py (new address every request, 10,007 user agents, throttle at its
default). wrk runs on CPU 0 as there; the servers and the Celery worker are not pinned: two server
workers need both cores. Rounds interleave the two configurations of one worker count; the
worker counts run one after the other.

This machine has 2 cores: 4 drain workers and a PostgreSQL server share them, and wrk, two
uvicorn workers and Redis share them too. What the tables show is how the work divides, not
what more machines would add: the text of the section says so next to the figures.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import POSTGRES_URL, PYTHON, ROOT, markdown_table, subprocess_env
from bench.report import Section, spread

SHARDS = (1, 3)
WORKERS = (1, 2, 4)
FULL = (200_000, 2_000)  # views, pages: the 18 drains take about 2.5 minutes here
QUICK = (20_000, 200)
REPEATS = {False: 3, True: 1}
TEMPLATE = "bench-scale-{shards}"  # the key prefix a filled buffer is kept under
PREFIX = "pageviews"  # the package's (its default)
PATIENCE = {"PAGEVIEW_REDIS_SOCKET_TIMEOUT": "10"}  # a busy machine must not fail a drain
UVICORN_WORKERS = {False: (1, 2), True: (2,)}  # quick: 1 is the throughput scenario's
REQUEST_CONFIGS = ("off", "redis")


def cluster_env(url: str, **extra: str) -> dict[str, str]:
    return subprocess_env(
        BENCH_TRACKING="redis",
        BENCH_DATABASE_URL=POSTGRES_URL,
        PAGEVIEW_REDIS_URL=json.dumps(url),
        PAGEVIEW_REDIS_CLUSTER="true",
        **PATIENCE,
        **extra,
    )


def run(quick: bool) -> Section:
    from tests.redis_cluster import PrivateCluster

    started = time.monotonic()
    views, pages = QUICK if quick else FULL
    cluster = PrivateCluster()
    cluster.start()
    try:
        fills = {shards: _fill(cluster.url, shards, views, pages) for shards in SHARDS}
        drains = _drains(cluster.url, views, REPEATS[quick])
    finally:
        cluster.close()
    requests = _requests(quick)
    return _section(drains, fills, requests, views, pages, time.monotonic() - started)


def _fill(url: str, shards: int, views: int, pages: int) -> float:
    """Fill the template of ``shards`` (bench/drain.py's filler); the seconds it took."""
    env = cluster_env(
        url,
        PAGEVIEW_BUFFER_SHARDS=str(shards),
        PAGEVIEW_KEY_PREFIX=json.dumps(TEMPLATE.format(shards=shards)),
    )
    began = time.perf_counter()
    subprocess.run(
        [PYTHON, "-m", "bench.drain", "--fill", "0", str(views), str(pages)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - began


def _drains(url: str, views: int, repeats: int) -> dict[tuple[int, int], list[dict[str, Any]]]:
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.scale_out", "--runner"],
        cwd=ROOT,
        env=cluster_env(url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    results: dict[tuple[int, int], list[dict[str, Any]]] = {}
    try:
        for _ in range(repeats):
            for shards in SHARDS:
                for workers in WORKERS:
                    command = {"shards": shards, "workers": workers, "views": views}
                    process.stdin.write(json.dumps(command) + "\n")
                    process.stdin.flush()
                    line = process.stdout.readline()
                    if not line:
                        raise SystemExit("the scale-out drain runner died (see its output above)")
                    result = json.loads(line)
                    results.setdefault((shards, workers), []).append(result)
                    print(f"scale-out drain {command} -> {result}", file=sys.stderr)
    finally:
        process.stdin.close()
        process.wait(timeout=120)
    return results


def _requests(quick: bool) -> dict[int, list[Any]]:
    """Per uvicorn worker count, bench/throughput.py's results of its rounds."""
    from bench import throughput as tp

    seconds, warmup = tp.QUICK_SECONDS if quick else tp.SECONDS
    env_extra = {"PAGEVIEW_THROTTLE_SECONDS": "20", "PAGEVIEW_EARLY_FLUSH_THRESHOLD": "10000"}
    cases = [("uvicorn", "project", config) for config in REQUEST_CONFIGS]
    found: dict[int, list[Any]] = {}
    for workers in UVICORN_WORKERS[quick]:
        with (
            tp.prepared("pageviews-scale-out-") as (workdir, template, script),
            tp.servers(cases, workdir, template, env_extra, workers, pin=False) as servers,
        ):
            rounds = 1 if quick else tp.ROUNDS
            found[workers] = tp.run_rounds(servers, rounds, seconds, warmup, script)
    return found


def _section(
    drains: dict[tuple[int, int], list[dict[str, Any]]],
    fills: dict[int, float],
    requests: dict[int, list[Any]],
    views: int,
    pages: int,
    seconds: float,
) -> Section:
    from bench import throughput as tp

    rows = []
    medians = {
        case: statistics.median(r["views"] / r["seconds"] for r in runs)
        for case, runs in drains.items()
    }
    for (shards, workers), runs in sorted(drains.items()):
        rates = [r["views"] / r["seconds"] for r in runs]
        rows.append(
            [
                str(shards),
                str(workers),
                spread(rates),
                f"{medians[(shards, workers)] / medians[(shards, 1)]:.2f}",
                spread([r["cpu"] / r["views"] * 1e6 for r in runs], 1),
                "yes" if all(r["ok"] for r in runs) else "; ".join(r["problem"] for r in runs),
            ]
        )
    drain_table = markdown_table(
        [
            "shards",
            "workers",
            "views/s",
            "vs 1 worker",
            "worker CPU µs/view",
            "every view stored once, buffer empty",
        ],
        rows,
    )
    request_rows = []
    for workers, results in requests.items():
        rps = {
            config: [r.rps for r in results if r.server.config == config]
            for config in REQUEST_CONFIGS
        }
        request_rows.append(
            [
                str(workers),
                spread(rps["off"]),
                spread(rps["redis"]),
                spread(tp.ratio(results, "uvicorn", "project", "redis", "off"), 2),
            ]
        )
    request_table = markdown_table(
        ["uvicorn workers", "untracked req/s", "Redis path req/s", "tracked / untracked"],
        request_rows,
    )
    fill_text = ", ".join(f"{fills[s]:.1f} s for {s} shard{'s' * (s > 1)}" for s in SHARDS)
    body = "\n".join(
        [
            f"Drain: {views:,} views over {pages:,} pages, raw rows on, PostgreSQL; a local Redis "
            f"Cluster (3 primaries, 3 replicas); filling took {fill_text}. Cells: median "
            "(min-max) over the repetitions, interleaved.",
            "",
            drain_table,
            "",
            f"Requests: uvicorn (uvloop, httptools) --workers {' and '.join(map(str, requests))}, "
            "the project stack, "
            "untracked and on the Redis path, wrk -t1 (CPU 0) as in the request overhead "
            "section, the servers and the Celery worker not pinned.",
            "",
            request_table,
            "",
            "This machine has 2 cores. Drain workers share them with PostgreSQL, and wrk, the "
            "uvicorn workers and Redis share them too: past 2 processes these figures show how "
            "the work divides (no view lost or written twice, no worker waiting on another's "
            "shard), not the throughput more cores or machines would add. Total "
            f"{seconds:.0f} s.",
        ]
    )
    headline = [
        f"scale-out drain ({views:,} views, raw rows, PostgreSQL): "
        + ", ".join(
            f"{s} shard(s) x {w} workers {medians[(s, w)]:,.0f}/s" for s, w in sorted(drains)
        )
    ]
    return Section(
        title="Scaling out (workers, shards, web processes)", body=body, headline=headline
    )


# --- In the runner subprocess ------------------------------------------------------------


def runner() -> None:
    """Run the drains read from stdin (one JSON command a line), one JSON result a line."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for line in sys.stdin:
        print(json.dumps(_run(json.loads(line))), flush=True)


def _run(command: dict[str, Any]) -> dict[str, Any]:
    from django.test import override_settings

    from bench.drain_runner import drain, reset_database
    from django_pageviews.redis.client import close_client

    reset_database()
    with override_settings(PAGEVIEW_BUFFER_SHARDS=command["shards"]):
        _restore_template(TEMPLATE.format(shards=command["shards"]))
        close_client()  # the forked workers make their own
        seconds, drained, cpu, _ = drain(command["workers"])
        problem = _problem(command["views"], drained)
    return {
        "seconds": seconds,
        "views": command["views"],
        "cpu": cpu,
        "ok": not problem,
        "problem": problem,
    }


def _restore_template(template: str) -> None:
    """The package's keys emptied, then the template's copied to them, on whichever node
    each name's slot lives (DUMP from one, RESTORE on the other)."""
    from redis.cluster import RedisCluster

    from django_pageviews.redis.client import get_client

    client = get_client()
    primaries = RedisCluster.PRIMARIES
    for key in list(client.scan_iter(match="{" + PREFIX + "*", target_nodes=primaries)):
        client.unlink(key)
    for key in list(client.scan_iter(match="{" + template + "*", target_nodes=primaries)):
        name = key.decode() if isinstance(key, bytes) else key
        client.restore("{" + PREFIX + name[len(template) + 1 :], 0, client.dump(name))


def _problem(views: int, drained: int) -> str:
    """What the database lacks or a shard still holds; "" when every view is there once."""
    from django_pageviews.models import PageView, PageViewDaily
    from django_pageviews.redis.buffer import all_shards
    from django_pageviews.redis.client import get_client

    daily = sum(PageViewDaily.objects.values_list("views", flat=True))
    rows = PageView.objects.count()
    client = get_client()
    left = [
        (client.hlen(k.pending), client.llen(k.events), client.zcard(k.claims))
        for k in all_shards(client)
    ]
    problems = []
    if daily != views or drained != views or rows != views:
        problems.append(f"{daily:,} in the daily totals, {rows:,} raw rows, {drained:,} drained")
    if any(any(counts) for counts in left):
        problems.append(f"left per shard (count fields, raw events, claims): {left}")
    return "; ".join(problems)


if __name__ == "__main__":
    if sys.argv[1:] == ["--runner"]:
        runner()
    else:
        section = run(quick="--quick" in sys.argv[1:])
        print(f"## {section.title}\n\n{section.body}\n")
        print("\n".join(section.headline))
