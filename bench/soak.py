"""Soak: a steady load on the Redis + Celery path for a few minutes, with the memory and
connections of every process sampled, exact counts at the end and a "no growth" verdict.

    .venv/bin/python bench/soak.py      # ~3-4 min

One uvicorn (uvloop, the tests' project with its lifespan wrapper), one Celery worker
(solo pool) and beat (a one-second schedule), a private redis-server started for the run
(nothing else is touched), and a temporary SQLite database (or BENCH_SOAK_DATABASE_URL,
which must name a database the script may migrate and fill). The load: BENCH_SOAK_RATE
requests per second (default 150) for BENCH_SOAK_SECONDS (default 150), 20 at a time,
each from a distinct visitor, over 500 pages. Every BENCH_SOAK_INTERVAL seconds (default
5) it samples the resident memory (VmRSS) of uvicorn, the worker, beat and redis-server,
and Redis's used_memory and connected_clients.

At the end: the views sent (200 responses) against the views stored, raw rows and views
counted as dropped, once the worker has drained Redis; and per series the mean of the
middle third of the samples against the last third (the first third is warm-up), with the
least-squares slope over both. "no growth" means the last third's mean is within 5% of
the middle third's, or the change is under 1 MiB (memory) or none (connections).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import fmt, markdown_table  # noqa: E402

RATE = float(os.environ.get("BENCH_SOAK_RATE", 150))
SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", 150))
INTERVAL = float(os.environ.get("BENCH_SOAK_INTERVAL", 5))
CONCURRENCY = 20
PAGES = 500
GROWTH_TOLERANCE = 0.05
MEMORY_SLACK = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Series:
    name: str
    unit: str  # "bytes" or "count"
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, value)

    def thirds(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        n = len(self.samples)
        return self.samples[n // 3 : 2 * n // 3], self.samples[2 * n // 3 :]

    def row(self) -> list[object]:
        middle, last = self.thirds()
        mid_mean = sum(v for _, v in middle) / len(middle)
        last_mean = sum(v for _, v in last) / len(last)
        change = last_mean - mid_mean
        relative = change / mid_mean if mid_mean else 0.0
        per_minute = slope(middle + last) * 60
        if self.unit == "bytes":
            flat = relative <= GROWTH_TOLERANCE or change < MEMORY_SLACK
            shown = [f"{mid_mean / 2**20:.1f} MiB", f"{last_mean / 2**20:.1f} MiB"]
            shown.append(f"{per_minute / 2**10:+,.0f} KiB/min")
        else:
            flat = change <= 0 or relative <= GROWTH_TOLERANCE
            shown = [f"{mid_mean:.1f}", f"{last_mean:.1f}", f"{per_minute:+.2f}/min"]
        verdict = "no growth" if flat else "GROWS"
        return [self.name, *shown[:2], f"{relative * 100:+.1f}%", shown[2], verdict]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, per second."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / var if var else 0.0


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pageviews-soak-"))
    database_url = os.environ.get("BENCH_SOAK_DATABASE_URL", f"sqlite:///{workdir / 'db.sqlite3'}")
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    for name in [n for n in os.environ if n.startswith(("PAGEVIEW_", "TESTS_"))]:
        del os.environ[name]  # the parent reads with the defaults; the children get theirs

    import django

    django.setup()
    from django.core.management import call_command

    from tests.chaos.faults_redis import ChaosRedis
    from tests.chaos.pipeline_load import Load
    from tests.chaos.pipeline_stack import Stack, read_ledger, settle

    call_command("migrate", verbosity=0)
    redis_server = ChaosRedis()
    redis_server.start()
    series: dict[str, Series] = {}
    try:
        with Stack(workdir, redis_server.url) as stack, redis_server.client() as client:
            web = stack.web("web")
            worker = stack.worker("worker")
            beat = stack.beat("beat")
            pids = {
                "uvicorn RSS": web.pid,
                "worker RSS": worker.pid,
                "beat RSS": beat.pid,
                "redis-server RSS": redis_server.process.pid,  # type: ignore[union-attr]
            }
            for name in pids:
                series[name] = Series(name, "bytes")
            series["Redis used_memory"] = Series("Redis used_memory", "bytes")
            series["Redis connected_clients"] = Series("Redis connected_clients", "count")
            total = int(RATE * SECONDS)
            print(f"soak: {total} requests at {RATE:.0f}/s ...", file=sys.stderr, flush=True)
            load = Load(
                [web.base],
                total,
                "soak",
                lambda i: (f"/pages/{i % PAGES}/", "page"),
                concurrency=CONCURRENCY,
                rate=RATE,
                deadline=SECONDS * 2 + 60,
            ).start()
            stop = threading.Event()
            started = time.monotonic()

            def sample() -> None:
                while not stop.wait(INTERVAL):
                    at = time.monotonic() - started
                    for name, pid in pids.items():
                        series[name].samples.append((at, rss_bytes(pid)))
                    info = client.info()
                    series["Redis used_memory"].samples.append((at, info["used_memory"]))
                    series["Redis connected_clients"].samples.append(
                        (at, info["connected_clients"])
                    )
                    print(
                        f"  {at:5.0f} s: {load.answered} answered, uvicorn "
                        f"{rss_bytes(pids['uvicorn RSS']) / 2**20:.1f} MiB, Redis "
                        f"{info['used_memory'] / 2**20:.1f} MiB, {info['connected_clients']} "
                        "clients",
                        file=sys.stderr,
                        flush=True,
                    )

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            result = load.join()
            stop.set()
            sampler.join()
            seconds = time.monotonic() - started
            ledger = settle(result.ok, client)
            if ledger.stored == result.ok and ledger.redis_idle:
                stack.wait_tasks(2)  # two more drains find nothing more to write
                ledger = read_ledger(client)
    finally:
        redis_server.close()

    exact = ledger.stored == result.ok and ledger.raw_rows == result.ok and ledger.dropped == 0
    print(
        f"## Soak: {SECONDS:.0f} s at {RATE:.0f} requests/s (Redis path, uvicorn + worker + beat)"
    )
    print()
    print(
        markdown_table(
            ["requests", "200s", "stored", "raw rows", "dropped", "left in Redis", "exact"],
            [
                [
                    fmt(sum(result.statuses.values())),
                    fmt(result.ok),
                    fmt(ledger.stored),
                    fmt(ledger.raw_rows),
                    fmt(ledger.dropped),
                    fmt(ledger.redis.get("pending_views", 0)),
                    "yes" if exact else "NO",
                ]
            ],
        )
    )
    print()
    print(f"Load ran {seconds:.0f} s; {len(series['uvicorn RSS'].samples)} samples.")
    print()
    print(
        markdown_table(
            ["series", "middle third", "last third", "change", "slope", "verdict"],
            [s.row() for s in series.values()],
        )
    )
    if database_url.startswith("sqlite:///") and workdir.exists():
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if not exact:
        raise SystemExit("the counts are not exact")


if __name__ == "__main__":
    main()
