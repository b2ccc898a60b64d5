"""A web process without the HTTP server, and a drain worker, for bench/memory.py and
bench/scaling.py: what they measure is the package's memory and CPU, at volumes (a
million views) and rates (16,700 views/s) that one uvicorn on this machine cannot serve
in the time a benchmark has.

    python -m bench.webproc web --views N [--rate R] [--every K] [--fill-caches]
    python -m bench.webproc drain --views N [--every K] [--original [--fill]]

``web``: on a uvloop event loop, Django ASGI requests (what uvicorn + Django build) of
``/pages/<n>/`` go through PageViewMiddleware around an async view, as fast as the
package takes them or at ``--rate`` views/s, from a realistic mix of visitors (5,003
addresses, 2,003 user agents, 10,000 pages; the (visitor, page) pairs repeat every PAIRS
views). ``drain``: ``drain_redis`` in a loop (a beat every second) until N views are in
the database. Both print one JSON line every K views: views so far, RSS, CPU seconds of
the whole process (every thread), and the counters at the end (for ``web``, also each
cache's entries: bench/caches.py, which ``--fill-caches`` brings to their bounds first).
Settings: bench.settings (BENCH_TRACKING, BENCH_DATABASE_URL, PAGEVIEW_*).

The 0.2.6-like processes: with BENCH_TRACKING a baseline of bench/baseline.py
(``sync-insert``, ``redis-list``), ``web`` puts Django's SessionMiddleware and that
baseline around the view instead of PageViewMiddleware (0.2.6 throttled through the
session), and reports the baseline's counts and its PostgreSQL backend; ``drain
--original`` runs bench/original.py's drain of 0.2.6's list instead of ``drain_redis``
(``--fill``: after filling that list with N views of PAGES articles).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import backend_pid
from bench.procs import rss_bytes

VISITORS = 5003  # prime: with PAGES, (visitor, page) pairs are distinct for 50M views
# Distinct user agents: fewer than the bot check's cache (bots.CACHE_SIZE, 8192), as on a
# real site where most views come from common browsers; a cyclic walk over more than the
# cache would miss it on every view, which no real traffic does.
AGENTS = 2003
PAGES = 10_000
YIELD_EVERY = 50  # views between two turns of the event loop (the batcher ships then)
BEAT = 1.0  # seconds between two drains of an idle worker
# Views waiting in this process beyond which the driver waits: a few shipments' worth, as
# a server's requests keep it (800 B each, 20,000 of them swung RSS by 15 MB between two
# readings, which hid whether anything was kept per view).
BACKLOG = 2_000


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def scope(i: int, pairs: int) -> dict[str, Any]:
    from bench.user_agents import BROWSERS

    k = i % pairs
    visitor, page = k % VISITORS, k % PAGES
    agent = f"{BROWSERS[visitor % AGENTS % len(BROWSERS)]} bench/{visitor % AGENTS}"
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/pages/{page}/",
        "raw_path": f"/pages/{page}/".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", agent.encode()),
            (b"accept", b"text/html"),
        ],
        "client": (f"10.{visitor >> 8 & 255}.{visitor & 255}.{k % 200 + 1}", 50000),
        "server": ("127.0.0.1", 8000),
    }


def backlog() -> int:
    """Views this process holds that are not yet in Redis or the database."""
    from django_pageviews.aio.batcher import _batchers
    from django_pageviews.buffer import buffer

    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    return buffer._size() + (len(batcher.queue) if batcher is not None else 0)


async def drive(views: int, seconds: float | None, every: int, pairs: int, warmup: int) -> None:
    """``views`` views as fast as they go (at most ``seconds``), sampled every ``every``;
    with ``warmup``, first that many views, then loads the parent asks for on stdin."""
    from django.core.handlers.asgi import ASGIRequest
    from django.http import HttpRequest, HttpResponse, HttpResponseBase
    from django.urls import resolve

    from django_pageviews.aio.lifespan import shutdown
    from django_pageviews.middleware import PageViewMiddleware

    async def page(request: HttpRequest) -> HttpResponseBase:
        return HttpResponse("page")

    tracked: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = page
    if baseline := _baseline():
        from django.contrib.sessions.middleware import SessionMiddleware
        from django.utils.module_loading import import_string

        tracked = SessionMiddleware(import_string(baseline)(page))  # type: ignore[assignment]
    elif os.environ.get("BENCH_TRACKING") != "off":
        tracked = PageViewMiddleware(page)  # type: ignore[assignment]
    first = 0

    async def serve(
        count: int,
        rate: float | None = None,
        seconds: float | None = None,
        sample: Callable[[int], None] | None = None,
        handler: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = tracked,
    ) -> int:
        """``count`` views at ``rate`` (or as fast as they go); how many before
        ``seconds`` ran out."""
        nonlocal first
        began = time.monotonic()
        for i in range(count):
            if sample is not None and i % every == 0:
                sample(i)
            if seconds is not None and time.monotonic() - began > seconds:
                count = i
                break
            if rate is not None:
                ahead = began + i / rate - time.monotonic()
                if ahead > 0.001:
                    await asyncio.sleep(ahead)
            elif i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
                # The server's capacity: it cannot outrun its writer (a thread: no event).
                while backlog() > BACKLOG:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            request = ASGIRequest(scope(first + i, pairs), _EMPTY)
            request.resolver_match = resolve(request.path_info)
            await handler(request)
        first += count  # the next load's visitors are new: no view is a reload
        return count

    if warmup:
        await loads(serve, warmup, page)
        await shutdown()
        emit(done=True, stats=_stats())
        return
    started = time.monotonic()
    cpu0 = time.process_time()  # every thread, ended ones too (the writer thread)

    def sample(i: int) -> None:
        t = time.monotonic() - started
        emit(views=i, rss=rss_bytes(), cpu=time.process_time() - cpu0, t=t)

    views = await serve(views, seconds=seconds, sample=sample)
    served = time.monotonic() - started
    sample(views)  # the views' own: what the shutdown allocates to ship them is not
    await shutdown()  # as the lifespan shutdown: ship or write what is held
    from bench.caches import sizes

    emit(
        done=True,
        views=views,
        served_seconds=served,
        shutdown_rss=rss_bytes(),
        stats=_stats(),
        caches=sizes(),
    )


async def loads(serve: Callable[..., Awaitable[int]], warmup: int, untracked: Any) -> None:
    """Warm up (every user agent seen by the bot check, code imported, clients connected),
    then run each load the parent asks for: a stdin line "<views/s> <seconds> tracked" or
    "... untracked". Each answers with its views and this process's CPU seconds, counted
    until the views it tracked have left the process."""
    loop = asyncio.get_running_loop()
    await serve(warmup)
    while backlog():  # noqa: ASYNC110 (the batcher's queue: no event to wait on)
        await asyncio.sleep(0.01)
    emit(warm=_stats())
    if _baseline():  # its session saves (and INSERTs): the database's share of its cost
        from asgiref.sync import sync_to_async

        emit(backend=await sync_to_async(backend_pid)())
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        rate, seconds, kind = line.split()
        handler = {"untracked": untracked}.get(kind)
        cpu0 = time.process_time()
        extra = {} if handler is None else {"handler": handler}
        views = await serve(
            round(float(rate) * float(seconds)), float(rate), float(seconds), **extra
        )
        while backlog():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a shipment under way: its reply
        emit(ran=views, cpu=time.process_time() - cpu0, stats=_stats())


def drain(views: int, every: int, original: bool = False, fill: bool = False) -> None:
    from bench import original as zero_two
    from django_pageviews.redis.drain import drain_redis

    if fill:
        zero_two.fill(zero_two.connect(), views, PAGES)
    run: Callable[[Callable[[int, int], None]], int] = lambda p: drain_redis(None, p).views  # noqa: E731
    if original:
        run = zero_two.prepared_drain()
    # the parent reads the CPU of our PostgreSQL backend
    if (backend := backend_pid()) is not None:
        emit(backend=backend)
    started = time.monotonic()
    cpu0 = time.process_time()
    done = 0
    next_sample = 0
    last_said = time.monotonic()

    def progress(batches: int, written: int) -> None:
        nonlocal next_sample, last_said
        if done + written >= next_sample:
            t = time.monotonic() - started
            emit(views=done + written, rss=rss_bytes(), cpu=time.process_time() - cpu0, t=t)
            next_sample += every
        if time.monotonic() - last_said >= 1.0:  # a long drain says how far it got
            last_said = time.monotonic()
            emit(drained=done + written, cpu=time.process_time() - cpu0)

    progress(0, 0)
    while done < views:
        drained = run(progress)
        done += drained
        if drained == 0:
            time.sleep(BEAT)  # as beat: the next drain a second later
        emit(drained=done, cpu=time.process_time() - cpu0)
    emit(views=done, rss=rss_bytes(), cpu=time.process_time() - cpu0, t=time.monotonic() - started)
    emit(done=True, views=done, stats=_stats())


def reset() -> None:
    """Migrate the benchmark database and empty the package's tables (nothing else)."""
    from django.core.management import call_command

    from bench.drain_runner import reset_database

    call_command("migrate", verbosity=0)
    reset_database()


def _baseline() -> str | None:
    """The dotted path of the 0.2.6-like middleware BENCH_TRACKING names, if it names one."""
    from django.conf import settings

    baselines: dict[str, str] = getattr(settings, "BASELINES", {})
    return baselines.get(os.environ.get("BENCH_TRACKING", ""))


def _stats() -> dict[str, int]:
    from django_pageviews import stats

    if _baseline():
        from bench.baseline import COUNTS

        return dict(COUNTS)
    return stats.snapshot()


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""


_EMPTY: Any = _Empty()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("web", "drain", "reset"))
    parser.add_argument("--views", type=int, required=True)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=50_000_000)
    parser.add_argument("--warmup", type=int, default=0, help="views before the measured ones")
    parser.add_argument(
        "--fill-caches", action="store_true", help="every cache at its bound first (caches.py)"
    )
    parser.add_argument("--original", action="store_true", help="0.2.6's drain (original.py)")
    parser.add_argument("--fill", action="store_true", help="0.2.6's list filled first")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if args.role == "reset":
        reset()
        emit(done=True)
        return
    if args.role == "drain":
        drain(args.views, args.every, args.original, args.fill)
        return
    if args.fill_caches:
        from bench.caches import fill

        emit(unfilled=rss_bytes())
        fill()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(drive(args.views, args.seconds, args.every, args.pairs, args.warmup))


if __name__ == "__main__":
    main()
