"""Where a live read's time goes (issue #11's 5 ms target for most-viewed lists): the reads
of bench/reads.py in async mode, with views pending in Redis, each split into Redis's own
time (its SLOWLOG, every command logged), the client's wait for Redis (round trips), the
database's (every query timed) and the rest (Python: planning, merging, resolving).

    BENCH_DATABASE_URL=postgres://... python -m bench.reads_profile [--quick] [--reuse]

Writes docs/profiles/reads-live.txt (``--quick``: prints it only), listed by bench/reads.py.

The data are bench/reads.py's at its full size (10,000 articles, 100 days stored, 200,000
distinct pending pages; ``--quick``: 1,000 articles, 2,000 pages), made by
reads_stored.StoredData and reads_pending.ship_pending; ``--reuse`` keeps stored days
already there. Printed: per read, the median wall time of ``REPEATS`` plain calls, then
the split of as many instrumented calls (their medians; the instruments cost a little
each), then cProfile's top functions of one list. Redis's time is its scripts' (SLOWLOG
logs the commands a script runs too: they are shown, not added; the one command a read
sends outside a script, GET of the claim sequence, takes a few microseconds).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

REPEATS = 21
PROFILE = "profiles/reads-live.txt"  # under docs/
DAYS = 100
PROFILED = "get_popular_objects(Article, 10, days=90)"
LIVE = [
    "get_view_count(obj)",
    "get_view_counts_for_objects(50)",
    "get_popular_objects(Article, 10, days=7)",
    "get_popular_objects(Article, 10, days=30)",
    "get_popular_objects(Article, 10, days=90)",
    "get_popular_objects(Article, 10) all time",
    "get_popular_urls(10, days=7)",
    "get_popular_urls(10) all time",
    "get_popular_view_names(5, days=7)",
]


class Split:
    """One instrumented call's time, by where it went (ms), and its round trips."""

    def __init__(self) -> None:
        self.redis_wall = 0.0  # the client waiting for Redis: sending, the server, reading
        self.round_trips = 0
        self.sql = 0.0
        self.queries = 0
        self.scripts = 0.0  # Redis's time running the scripts (ms)
        self.server: Counter[str] = Counter()  # Redis's time by script and command (ms)
        self.calls: Counter[str] = Counter()


@contextmanager
def instrumented(split: Split) -> Iterator[None]:
    """Time every Redis round trip (one send of the connection's: a command or a whole
    pipeline) and every query of ``split``'s call."""
    from django.db import connection
    from redis.connection import AbstractConnection

    send: Callable[..., Any] = AbstractConnection.send_packed_command
    read: Callable[..., Any] = AbstractConnection.read_response

    def timed_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        split.round_trips += 1
        started = time.perf_counter()
        try:
            return send(self, *args, **kwargs)
        finally:
            split.redis_wall += (time.perf_counter() - started) * 1000

    def timed_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return read(self, *args, **kwargs)
        finally:
            split.redis_wall += (time.perf_counter() - started) * 1000

    def query(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        split.queries += 1
        started = time.perf_counter()
        try:
            return execute(sql, *args)
        finally:
            split.sql += (time.perf_counter() - started) * 1000

    AbstractConnection.send_packed_command = timed_send  # type: ignore[method-assign]
    AbstractConnection.read_response = timed_read  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(query):
            yield
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        AbstractConnection.read_response = read  # type: ignore[method-assign]


def script_names() -> dict[str, str]:
    """SHA-1 -> the name of each script of the package (what SLOWLOG shows of EVALSHA)."""
    from redis.commands.core import Script

    from django_pageviews.redis import scripts

    return {s.sha: name for name, s in vars(scripts).items() if isinstance(s, Script) and s.sha}


def server_time(admin: Any, split: Split) -> None:
    """Redis's own time of the commands since the last SLOWLOG RESET, into ``split``."""
    names = script_names()
    for entry in admin.slowlog_get(10_000):
        command = entry["command"]
        parts = (
            command.decode(errors="replace") if isinstance(command, bytes) else command
        ).split()
        name = parts[0].upper()
        if name == "EVALSHA" and len(parts) > 1:
            name = "script " + names.get(parts[1], parts[1][:8])
        if name != "SLOWLOG":
            split.server[name] += entry["duration"] / 1000
            split.calls[name] += 1
        if name.startswith("script"):
            split.scripts += entry["duration"] / 1000


def measure(reads: dict[str, Callable[[], object]], admin: Any) -> str:
    """The table: per read, plain wall time and the instrumented split (medians)."""
    out = io.StringIO()
    out.write(
        f"{'read':44} {'wall':>6} | {'Lua':>6} {'Redis rt':>8} {'trips':>5} "
        f"{'SQL':>6} {'q':>3} {'Python':>6}  (ms, medians of {REPEATS})\n"
    )
    for name in LIVE:
        read = reads[name]
        read()
        plain = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            read()
            plain.append((time.perf_counter() - started) * 1000)
        splits, walls = [], []
        for _ in range(REPEATS):
            split = Split()
            admin.slowlog_reset()
            with instrumented(split):
                started = time.perf_counter()
                read()
                walls.append((time.perf_counter() - started) * 1000)
            server_time(admin, split)
            splits.append(split)
        srv = median(s.scripts for s in splits)
        rt = median(s.redis_wall for s in splits)
        sql = median(s.sql for s in splits)
        py = median(w - s.redis_wall - s.sql for w, s in zip(walls, splits, strict=True))
        out.write(
            f"{name:44} {median(plain):6.2f} | {srv:6.2f} {rt:8.2f} "
            f"{median(s.round_trips for s in splits):5.0f} {sql:6.2f} "
            f"{median(s.queries for s in splits):3.0f} {py:6.2f}\n"
        )
        commands: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        for s in splits:
            commands.update(s.server)
            calls.update(s.calls)
        detail = ", ".join(
            f"{cmd} {calls[cmd] / REPEATS:.0f}x {ms / REPEATS:.2f}"
            for cmd, ms in commands.most_common()
        )
        out.write(f"{'':44}   in Redis, per read (x times, ms): {detail}\n")
    return out.getvalue()


def profile(read: Callable[[], object]) -> str:
    """cProfile (wall clock) of ``REPEATS`` calls of ``read``: the top functions."""
    out = io.StringIO()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(REPEATS):
        read()
    prof.disable()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue().replace(os.getcwd() + "/", "")


def main(quick: bool, reuse: bool) -> str:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import override_settings

    from bench.common import redis_client
    from bench.reads_measure import PENDING, PENDING_QUICK, reads
    from bench.reads_pending import ship_pending
    from bench.reads_stored import StoredData

    call_command("migrate", run_syncdb=True, verbosity=0)
    articles, pages = (1_000, PENDING_QUICK) if quick else (10_000, PENDING)
    data = StoredData(connection, articles)
    if not reuse or data.count("django_pageviews_pageviewdaily") != articles * DAYS:
        data.reset()
        data.days(0, DAYS - 1)
    ship_pending(pages, articles)
    admin = redis_client()
    admin.config_set("slowlog-log-slower-than", 0)
    admin.config_set("slowlog-max-len", 10_000)
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True):
        todo = reads(articles)
        head = (
            f"Live reads, {connection.vendor}: {articles:,} articles, {DAYS} days stored, "
            f"{pages:,} distinct pages pending in Redis (1-5 views each). wall: plain calls; "
            "then instrumented calls: Lua = Redis's time in the scripts (SLOWLOG), Redis rt = "
            "the client's wait on Redis (send + read, server time included), trips = round "
            "trips, SQL = query time (q queries), Python = wall - Redis rt - SQL.\n\n"
        )
        table = measure(todo, admin)
        top = profile(todo[PROFILED])
    admin.config_set("slowlog-log-slower-than", 10_000)
    return head + table + f"\ncProfile of {REPEATS} calls of {PROFILED}:\n" + top


if __name__ == "__main__":
    from bench.common import ROOT

    text = main("--quick" in sys.argv, "--reuse" in sys.argv)
    if "--quick" not in sys.argv:
        (ROOT / "docs" / PROFILE).write_text(text)
    print(text)
