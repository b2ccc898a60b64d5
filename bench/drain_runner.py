"""The drains of bench/drain.py, in a process configured for one database (Django set
up): reset the database and Redis, release 1 or 2 forked workers, check the outcome; or
the same for the 0.2.6-like drain of bench/original.py, 1 worker."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.db import connection, connections
from django.test import override_settings

from bench import original
from bench.common import backend_pid
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.redis.buffer import Keys

CONTEXT = multiprocessing.get_context("fork")


class Runner:
    def __init__(self) -> None:
        import redis

        from bench.common import redis_url

        call_command("migrate", verbosity=0)
        self.redis = redis.Redis.from_url(redis_url(), decode_responses=True)
        self.sqlite_copy: Path | None = None
        if connection.vendor == "sqlite":  # each run starts from this migrated copy
            name = Path(str(connection.settings_dict["NAME"]))
            connection.close()
            self.sqlite_copy = name.with_suffix(".migrated")
            shutil.copyfile(name, self.sqlite_copy)

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        reset_database(self.sqlite_copy)
        if command.get("original"):
            original.fill(self.redis, command["views"], command["pages"])
            seconds, drained, cpu, server = drain(1, original.prepared_drain)
            problem = self._original_problem(command["views"], drained)
        else:
            self._reset_redis(command["template"])
            with override_settings(PAGEVIEW_STORE_RAW=command["raw"]):
                seconds, drained, cpu, server = drain(command["workers"])
                problem = self._problem(command["views"], command["raw"], drained)
        return {
            "seconds": seconds,
            "views": command["views"],
            "cpu": cpu,
            "server_cpu": server,
            "ok": not problem,
            "problem": problem,
        }

    def _reset_redis(self, template: str) -> None:
        """The package's keys as the batchers left them in the template (COPY, server-side)."""
        ours = Keys.current().prefix
        source = "{" + template + "}:"
        with self.redis.pipeline(transaction=False) as pipe:
            for key in self.redis.scan_iter(ours + "*", count=1000):
                pipe.unlink(key)
            for key in self.redis.scan_iter(source + "*", count=1000):
                pipe.copy(key, ours + key[len(source) :], replace=True)
            pipe.execute()

    def _original_problem(self, views: int, drained: int) -> str:
        """As ``_problem``, for the 0.2.6-like drain: one row per view, an empty list (the
        list is removed when it is not)."""
        rows, left = PageView.objects.count(), self.redis.llen(original.KEY)
        self.redis.delete(original.KEY)
        connections.close_all()
        if rows == drained == views and not left:
            return ""
        return f"{rows:,} rows, {drained:,} drained of {views:,}, {left:,} left in Redis"

    def _problem(self, views: int, raw: bool, drained: int) -> str:
        """What the database or Redis lacks or still holds; "" when every view is there."""
        daily = sum(PageViewDaily.objects.values_list("views", flat=True))
        rows = PageView.objects.count()
        keys = Keys.current()
        left = (
            self.redis.hlen(keys.pending),
            self.redis.llen(keys.events),
            self.redis.zcard(keys.claims),
        )
        problems = []
        if daily != views or drained != views:
            problems.append(
                f"{daily:,} views in the daily totals, {drained:,} drained of {views:,}"
            )
        if rows != (views if raw else 0):
            problems.append(f"{rows:,} raw rows")
        if any(left):
            problems.append(f"left in Redis (count fields, raw events, claims): {left}")
        connections.close_all()
        return "; ".join(problems)


def reset_database(sqlite_copy: Path | None = None) -> None:
    """The package's tables emptied, and the sessions the 0.2.6-like baselines save (one
    per view): the migrated copy put back on SQLite when there is one, else TRUNCATE
    (DELETE on SQLite)."""
    tables = [m._meta.db_table for m in apps.get_app_config("django_pageviews").get_models()]
    if apps.is_installed("django.contrib.sessions"):
        tables.append(apps.get_model("sessions", "Session")._meta.db_table)
    if sqlite_copy is not None:
        connection.close()
        name = Path(str(connection.settings_dict["NAME"]))
        for leftover in (
            name.with_name(name.name + "-journal"),
            name.with_name(name.name + "-wal"),
        ):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(sqlite_copy, name)
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(qn(t) for t in tables)} RESTART IDENTITY")
        elif connection.vendor == "sqlite":
            for table in tables:
                cursor.execute(f"DELETE FROM {qn(table)}")
        else:
            for table in tables:
                cursor.execute(f"TRUNCATE TABLE {qn(table)}")
    connections.close_all()


def drain(
    workers: int, prepare: Callable[[], Callable[[], int]] | None = None
) -> tuple[float, int, float, float]:
    """Fork ``workers`` drains, release them together: the seconds until the last one
    returned, the views they wrote, the CPU seconds they used, and those of their
    PostgreSQL server processes (NaN elsewhere). ``prepare``, called in each worker
    before the release, returns its drain (default: the package's ``drain_redis``)."""
    connections.close_all()  # each worker opens its own
    ready = CONTEXT.Barrier(workers + 1)
    results = CONTEXT.Queue()
    args = (ready, results, prepare or _package_drain)
    processes = [CONTEXT.Process(target=_worker, args=args) for _ in range(workers)]
    for p in processes:
        p.start()
    ready.wait()
    started = time.perf_counter()
    done = [results.get(timeout=600) for _ in processes]
    for p in processes:
        p.join()
    return (
        max(d[0] for d in done) - started,
        sum(d[1] for d in done),
        sum(d[2] for d in done),
        sum(d[3] for d in done),
    )


def _package_drain() -> Callable[[], int]:
    """The package's drain, with its Redis connection open (as a worker's would be)."""
    from django_pageviews.redis.client import get_client
    from django_pageviews.redis.drain import drain_redis

    get_client().ping()
    return lambda: drain_redis(None).views


def _worker(ready: Any, results: Any, prepare: Callable[[], Callable[[], int]]) -> None:
    connection.ensure_connection()
    run = prepare()
    backend = _backend()
    ready.wait()
    cpu, server = time.process_time(), _cpu_seconds(backend)
    views = run()
    end = time.perf_counter()
    server = _cpu_seconds(backend) - server
    results.put((end, views, time.process_time() - cpu, server))
    connections.close_all()


def _backend() -> Path | None:
    """The /proc stat file of this connection's PostgreSQL server process, if it runs on
    this machine (its CPU time is the database's share of the drain); else None."""
    pid = backend_pid()
    if pid is None:
        return None
    stat = Path(f"/proc/{pid}/stat")
    return stat if stat.exists() else None


def _cpu_seconds(stat: Path | None) -> float:
    if stat is None:
        return float("nan")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
