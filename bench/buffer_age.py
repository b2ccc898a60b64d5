"""What a shorter PAGEVIEW_MAX_BUFFER_AGE costs: write transactions and server CPU.

The age bounds what a SIGKILL (an OOM kill) loses in in-process mode; shorter means more,
smaller transactions. For each candidate age, a real uvicorn (one worker, bench.asgi, the
tests' project) serves two loads of distinct views for SECONDS each:

- low: one client, LOW_RATE views/s (a quiet site, where the age decides every write);
- high: HIGH_CLIENTS clients as fast as they go (a busy one, where PAGEVIEW_BATCH_SIZE
  fills first).

Columns: views/s served, write transactions/s (batches committed: ProcessedBatch rows),
views per transaction, and the server's CPU (utime + stime from /proc) as % of one core
and in microseconds per view. A second table gives the writer's own CPU per transaction
of n views (``buffer.flush()`` timed with ``time.thread_time``, median of REPEATS), from
which the cost of an age follows: a quiet site pays about one transaction per age. The
database is a temporary SQLite file, or BENCH_DATABASE_URL (e.g. PostgreSQL).
Run: ``.venv/bin/python bench/buffer_age.py`` (about 3 minutes per database).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, fmt, markdown_table, subprocess_env  # noqa: E402

AGES = (0.5, 1.0, 2.0, 5.0, 300.0)
SECONDS = 10.0
LOW_RATE = 20.0
HIGH_CLIENTS = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def batches(env: dict[str, str]) -> int:
    code = (
        "import django; django.setup(); "
        "from django_pageviews.models import ProcessedBatch; "
        "print(ProcessedBatch.objects.count())"
    )
    out = subprocess.run([PYTHON, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True)
    return int(out.stdout)


def load(base: str, clients: int, rate: float | None) -> int:
    """Distinct views for SECONDS: ``clients`` clients, each at ``rate`` views/s or as
    fast as it goes; the number of 200 responses."""
    ok = [0] * clients
    start = time.monotonic()

    def client(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            n = 0
            while (now := time.monotonic()) < start + SECONDS:
                if rate is not None and now < start + n / rate:
                    time.sleep(start + n / rate - now)
                    continue
                ua = f"Mozilla/5.0 bench-visitor/{i}-{n}"
                if c.get("/plain/", headers={"user-agent": ua}).status_code == 200:
                    ok[i] += 1
                n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(ok)


def measure(age: float, env: dict[str, str], port: int) -> list[list[object]]:
    env = {**env, "PAGEVIEW_MAX_BUFFER_AGE": str(age), "PAGEVIEW_BUFFER_TIMEOUT": "300"}
    base = f"http://127.0.0.1:{port}"
    args = [str(Path(PYTHON).parent / "uvicorn"), "bench.asgi:application", "--port", str(port)]
    server = subprocess.Popen(
        [*args, "--no-access-log"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    rows: list[list[object]] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/plain/", headers={"user-agent": "probe-bot"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for name, clients, rate in (("low", 1, LOW_RATE), ("high", HIGH_CLIENTS, None)):
            before_batches, before_cpu = batches(env), cpu_seconds(server.pid)
            began = time.monotonic()
            views = load(base, clients, rate)
            # the last partial batch is written within the age (300 s: not waited for)
            time.sleep(min(age, 5.0) + 0.5)
            cpu = cpu_seconds(server.pid) - before_cpu
            elapsed = time.monotonic() - began
            written = batches(env) - before_batches
            rows.append(
                [
                    f"{age:g} s",
                    name,
                    fmt(views / SECONDS),
                    fmt(written / SECONDS, 1),
                    fmt(views / written if written else 0, 1),
                    fmt(100 * cpu / elapsed, 1),
                    fmt(1e6 * cpu / views),
                ]
            )
            print(rows[-1], file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return rows


WRITER_SIZES = (1, 10, 20, 100)
REPEATS = 30


def writer_cost() -> None:
    """In a subprocess configured for Django: CPU µs of one write of n views."""
    import django

    django.setup()
    from bench.common import median, realistic_event
    from django_pageviews.buffer import buffer

    rows = []
    for n in WRITER_SIZES:
        samples = []
        for r in range(REPEATS):
            for page in range(n):
                buffer.add(realistic_event(page + r))
            start = time.thread_time()
            assert buffer.flush() == n
            samples.append(time.thread_time() - start)
        cost = median(samples) * 1e6
        rows.append([n, fmt(cost), fmt(cost / n)])
    print(markdown_table(["views per transaction", "writer CPU µs/tx", "µs/view"], rows))


def main() -> None:
    if sys.argv[1:] == ["--writer"]:
        writer_cost()
        return
    database = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = database or f"sqlite:///{tmp}/bench.sqlite3"
        env = subprocess_env(BENCH_DATABASE_URL=url, BENCH_TRACKING="inprocess")
        migrate = [PYTHON, "manage.py", "migrate", "--noinput"]
        subprocess.run(migrate, env=env, cwd=ROOT, check=True, capture_output=True)
        rows: list[list[object]] = []
        for age in AGES:
            rows += measure(age, env, free_port())
        env = {**env, "PAGEVIEW_MAX_BUFFER_AGE": "3600", "PAGEVIEW_BATCH_SIZE": "1000"}
        writer = [PYTHON, __file__, "--writer"]
        table = subprocess.run(writer, env=env, cwd=ROOT, check=True, capture_output=True)
    vendor = url.split(":", 1)[0]
    print(f"Database: {vendor}; {SECONDS:g} s per load; uvicorn, 1 worker.\n")
    headers = ["max age", "load", "views/s", "write tx/s", "views/tx", "CPU % core", "CPU µs/view"]
    print(markdown_table(headers, rows))
    print()
    print(table.stdout.decode(), end="")


if __name__ == "__main__":
    main()
