"""CPU time per view that tracking costs, measured in one process without a server.

    .venv/bin/python bench/request_cost.py

A load test on a shared 2-core machine measures the machine as much as the code; CPU
time per call does not depend on what else runs. This calls ``middleware.track`` (what
PageViewMiddleware adds to a request) on a realistic request, then times separately the
work done off the request path: the in-process buffer's database write, or the asyncio
batcher's shipments to Redis (database 12).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

N = 20_000
REPEATS = 3


def cpu_per_view(action: Callable[[], object]) -> float:
    """CPU microseconds (every thread of this process) per view of ``action``."""
    started = time.process_time()
    action()
    return (time.process_time() - started) / N * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pageviews-cost-") as tmp:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            BENCH_DATABASE_URL=f"sqlite:///{tmp}/cost.sqlite3",
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        results = measure()
    print_table(results)


def measure() -> dict[str, list[tuple[float, float]]]:
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings
    from django.urls import resolve

    from bench.common import CHROME_UA, flush_redis, redis_client
    from django_pageviews.buffer import buffer
    from django_pageviews.middleware import track

    request = RequestFactory().get("/async/", HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.57")
    request.resolver_match = resolve("/async/")
    response = HttpResponse("async")

    def requests() -> None:
        for _ in range(N):
            track(request, response)

    results: dict[str, list[tuple[float, float]]] = {"inprocess": [], "redis": []}
    # No background flush while requests are timed: the batch is written afterwards.
    with override_settings(PAGEVIEW_BATCH_SIZE=N + 1, PAGEVIEW_MAX_BUFFER_AGE=3600):
        for _ in range(REPEATS):
            results["inprocess"].append((cpu_per_view(requests), cpu_per_view(buffer.flush)))

    async def redis_run() -> tuple[float, float]:
        from django_pageviews.aio.batcher import aclose as close_batcher
        from django_pageviews.aio.client import aclose

        # Nothing awaits while the requests run, so the shipper only runs afterwards
        # (closing the batcher ships everything it holds).
        on_path = cpu_per_view(requests)
        started = time.process_time()
        await close_batcher()
        shipping = (time.process_time() - started) / N * 1e6
        await aclose()
        return on_path, shipping

    client: Any = redis_client()
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_LOCAL_QUEUE_SIZE=N + 1):
        for _ in range(REPEATS):
            flush_redis(client)
            results["redis"].append(asyncio.run(redis_run()))
    flush_redis(client)
    client.close()
    return results


def print_table(results: dict[str, list[tuple[float, float]]]) -> None:
    from bench.common import fmt, markdown_table, median

    rows: list[list[object]] = []
    for mode, runs in results.items():
        on_path = median([r[0] for r in runs])
        off_path = median([r[1] for r in runs])
        rows.append(
            [
                mode,
                fmt(on_path, 1),
                "database write (raw rows + daily upsert), SQLite"
                if mode == "inprocess"
                else "ship script calls, 500 views each",
                fmt(off_path, 1),
            ]
        )
    print(f"{N:,} views of GET /async/ per run, median of {REPEATS} runs; CPU µs per view.")
    print()
    headers = ["tracking", "request path µs/view", "off the request path", "µs/view"]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
