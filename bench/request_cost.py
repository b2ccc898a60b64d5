"""CPU time per view that tracking costs, measured in one process without a server.

    python -m bench.request_cost [--quick]

A load test on a shared 2-core machine measures the machine as much as the code; CPU time
per call does not depend on what else runs. This calls ``middleware.track`` (what
PageViewMiddleware adds to a request) on realistic requests, then times separately the
work done off the request path: the in-process buffer's database write, or the asyncio
batcher's shipments to Redis (database 12). Requests come two ways: ``one visitor`` (the
same address and user agent every time: every cache hits, as a load tool with a fixed
User-Agent sees it) and ``distinct visitors`` (a new address and user agent each time,
more than any cache holds: what a busy site's long tail costs). The throttle is at its
default. The bot check on first sight is also timed alone, with crawlerdetect's own
matcher (what the package used before crawlers.py) for comparison.

The measurement runs in a child process (its own Django settings); ``run`` reads its JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import PYTHON, ROOT, fmt, markdown_table, subprocess_env  # noqa: E402
from bench.report import Section, spread  # noqa: E402

REPEATS = 3
CHILD_FLAG = "--child"


def cpu_us(action: Callable[[], object], n: int) -> float:
    """CPU microseconds (every thread of this process) per item of ``action``."""
    started = time.process_time()
    action()
    return (time.process_time() - started) / n * 1e6


def measure(n: int) -> dict[str, list[float]]:
    from crawlerdetect import CrawlerDetect
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings
    from django.urls import resolve

    from bench.common import CHROME_UA, flush_redis, redis_client
    from bench.user_agents import browser_variants
    from django_pageviews import bots
    from django_pageviews.buffer import buffer
    from django_pageviews.middleware import track
    from django_pageviews.throttle import throttle

    factory = RequestFactory()
    match = resolve("/async/")
    response = HttpResponse("async")
    agents = browser_variants(n)

    def request(i: int, agent: str) -> Any:
        ip = f"11.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
        r = factory.get("/async/", HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
        r.resolver_match = match
        return r

    one = [request(0, CHROME_UA)] * n
    results: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    def requests(batch: list[Any]) -> Callable[[], None]:
        def go() -> None:
            for r in batch:
                track(r, response)

        return go

    def fresh() -> None:
        bots.is_bot.cache_clear()
        bots._detector.cache_clear()
        bots._detector()  # built once per process, as by the first request
        throttle.clear()

    client: Any = redis_client()
    detector = CrawlerDetect()
    with override_settings(
        PAGEVIEW_THROTTLE_SECONDS=20,
        PAGEVIEW_BATCH_SIZE=n + 1,  # no background flush while requests are timed
        PAGEVIEW_MAX_BUFFER_AGE=3600,
    ):
        for rep in range(REPEATS):
            # New addresses each repetition: the throttle must not remember them.
            distinct = [request(rep * n + i, a) for i, a in enumerate(agents)]
            for visitors, batch in (("one visitor", one), ("distinct visitors", distinct)):
                fresh()
                add(f"inprocess|{visitors}|request", cpu_us(requests(batch), n))
                add(f"inprocess|{visitors}|write", cpu_us(buffer.flush, n))
            fresh()
            add(
                "bot check|first sight|crawlers.py",
                cpu_us(lambda: [bots.is_bot(a) for a in agents], n),
            )
            few = agents[: max(n // 20, 50)]
            detector._cached_check.cache_clear()
            add(
                "bot check|first sight|crawlerdetect",
                cpu_us(lambda few=few: [detector.is_crawler(a) for a in few], len(few)),
            )

    async def redis_run(batch: list[Any]) -> tuple[float, float]:
        from django_pageviews.aio.batcher import aclose as close_batcher
        from django_pageviews.aio.client import aclose

        # Nothing awaits while the requests run, so the shipper only runs afterwards
        # (closing the batcher ships everything it holds).
        on_path = cpu_us(requests(batch), n)
        started = time.process_time()
        await close_batcher()
        shipping = (time.process_time() - started) / n * 1e6
        await aclose()
        return on_path, shipping

    with override_settings(
        PAGEVIEW_ASYNC_PROCESSING=True,
        PAGEVIEW_THROTTLE_SECONDS=20,
        PAGEVIEW_LOCAL_QUEUE_SIZE=n + 1,
    ):
        for rep in range(REPEATS):
            distinct = [request((REPEATS + rep) * n + i, a) for i, a in enumerate(agents)]
            for visitors, batch in (("one visitor", one), ("distinct visitors", distinct)):
                flush_redis(client)
                fresh()
                on_path, shipping = asyncio.run(redis_run(batch))
                add(f"redis|{visitors}|request", on_path)
                add(f"redis|{visitors}|write", shipping)
    flush_redis(client)
    client.close()
    return results


def child(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pageviews-cost-") as tmp:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            BENCH_DATABASE_URL=f"sqlite:///{tmp}/cost.sqlite3",
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(json.dumps(measure(n)))


def run(quick: bool) -> Section:
    n = 1_000 if quick else 20_000
    out = subprocess.run(
        [PYTHON, "-m", "bench.request_cost", CHILD_FLAG, str(n)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"request_cost failed:\n{out.stderr[-3000:]}")
    results: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = []
    for mode, work in (
        ("inprocess", "database write (raw rows + daily upsert), SQLite"),
        ("redis", "shipping (throttle SET NX, 500 views per script call)"),
    ):
        for visitors in ("one visitor", "distinct visitors"):
            rows.append(
                [
                    mode,
                    visitors,
                    spread(results[f"{mode}|{visitors}|request"], 1),
                    work,
                    spread(results[f"{mode}|{visitors}|write"], 1),
                ]
            )
    bot_rows = [
        [name, spread(results[f"bot check|first sight|{name}"], 1)]
        for name in ("crawlers.py", "crawlerdetect")
    ]
    body = "\n".join(
        [
            f"{n:,} views of GET /async/ per run, {REPEATS} runs; CPU µs per view, median "
            "(min-max). Throttle 20 s; distinct visitors: a new address and one of "
            f"{n:,} browser user agents per request.",
            "",
            markdown_table(
                ["tracking", "visitors", "request path µs/view", "off the request path", "µs/view"],
                rows,
            ),
            "",
            "The bot check alone, on user agents never seen before (every cache empty):",
            "",
            markdown_table(["matcher", "µs/user agent"], bot_rows),
        ]
    )
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    headline = [
        "request path CPU per view, distinct visitors: "
        f"in-process {fmt(med['inprocess|distinct visitors|request'], 1)} µs, "
        f"Redis {fmt(med['redis|distinct visitors|request'], 1)} µs "
        f"(+{fmt(med['redis|distinct visitors|write'], 1)} µs shipping); bot check on "
        f"first sight {fmt(med['bot check|first sight|crawlers.py'], 1)} µs "
        f"(crawlerdetect: {fmt(med['bot check|first sight|crawlerdetect'], 0)} µs)"
    ]
    return Section(
        title="CPU per view (no server)",
        body=body,
        headline=headline,
        files=["profiles/request-accounting.md"],
    )


if __name__ == "__main__":
    if CHILD_FLAG in sys.argv:
        child(int(sys.argv[sys.argv.index(CHILD_FLAG) + 1]))
    else:
        section = run("--quick" in sys.argv)
        print(f"## {section.title}\n\n{section.body}\n")
        print("\n".join(section.headline))
