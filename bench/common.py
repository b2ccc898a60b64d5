"""What the benchmarks share: paths, the Redis database they may wipe (a private server
unless BENCH_REDIS_URL names one), realistic events, and Markdown output. Importing this
module does not configure Django."""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOWEST_WRITABLE_DB = 12  # databases 0-11 belong to others on a shared server
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/bench")
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/bench")
CHROME_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
ANONYMISED_IP = "203.0.113.0"  # what privacy.anonymize_ip leaves of 203.0.113.57


def redis_url() -> str:
    """The only Redis database the benchmarks write to; they FLUSHDB it themselves.

    BENCH_REDIS_URL names one (a server the user gives them to empty). Otherwise a private
    redis-server is started on first use and stopped at exit: a Redis the benchmarks did not
    start is never flushed. The variable is then set, so that this process's Django
    settings and its subprocesses (subprocess_env) use the same server."""
    named = os.environ.get("BENCH_REDIS_URL")
    if named:
        return named
    from tests.redis_server import PrivateRedis

    server = PrivateRedis()
    server.start()
    atexit.register(server.close)
    url = f"redis://127.0.0.1:{server.port}/{LOWEST_WRITABLE_DB}"
    os.environ["BENCH_REDIS_URL"] = url
    return url


def redis_client() -> Any:
    """A client on the benchmark database, configured as the package's own client."""
    import redis

    client = redis.Redis.from_url(redis_url(), decode_responses=True)
    db = int(client.connection_pool.connection_kwargs.get("db", 0))
    if db < LOWEST_WRITABLE_DB:
        raise SystemExit(f"refusing to use Redis database {db}: the benchmarks wipe theirs")
    return client


CANARY = "bench:canary"  # FLUSHDB by another process removes it: a disturbed run


def flush_redis(client: Any) -> None:
    """FLUSHDB, keeping the canary if it is still there (its absence is the evidence)."""
    token = client.get(CANARY)
    client.flushdb(asynchronous=False)
    if token is not None:
        client.set(CANARY, token)


def machine_busy_cores(seconds: float = 1.0) -> float:
    """Cores busy over ``seconds`` (all processes)."""

    def busy() -> tuple[float, float]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values[:8]) - values[3] - values[4], time.monotonic()

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return (b1 - b0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)


def wait_for_quiet_machine(threshold: float = 0.3, limit: float = 90) -> float:
    """Wait (at most ``limit`` s) until other work leaves the cores idle; the busy cores
    last seen. The machine is shared: a run next to someone's test suite measures both."""
    started = time.monotonic()
    while (cores := machine_busy_cores()) > threshold and time.monotonic() - started < limit:
        time.sleep(2)
    return cores


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return seen


def foreign_clients(client: Any) -> list[str]:
    """Connections to our Redis database from processes that are not ours (nor our
    children): the test suite, for one, picks its databases from 1-15 by process id."""
    db = int(client.connection_pool.connection_kwargs.get("db", 0))
    ports = {
        c["addr"].rsplit(":", 1)[1] for c in client.client_list() if int(c.get("db", -1)) == db
    }
    if not ports:
        return []
    server_port = client.connection_pool.connection_kwargs.get("port", 6379)
    sockets = subprocess.run(
        ["ss", "-tnpH", f"dport = :{server_port}"], capture_output=True, text=True, check=False
    ).stdout
    me = os.getpid()
    foreign = []
    for line in sockets.splitlines():
        fields = line.split()
        match = re.search(r"pid=(\d+)", line)
        if len(fields) < 4 or match is None or fields[3].rsplit(":", 1)[1] not in ports:
            continue
        pid = int(match.group(1))
        if me not in _ancestors(pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                cmd = "?"
            foreign.append(f"pid {pid}: {cmd.strip()[:120]}")
    return foreign


def wait_until_quiet(client: Any, limit: float = 600) -> float:
    """Wait until no other process uses our Redis database; the seconds waited."""
    started = time.monotonic()
    while (others := foreign_clients(client)) and time.monotonic() - started < limit:
        print(f"waiting: Redis db in use by {others[0]}", file=sys.stderr, flush=True)
        time.sleep(5)
    return time.monotonic() - started


@contextmanager
def watch_redis(interval: float = 0.5) -> Iterator[set[str]]:
    """Wait for a quiet database, then record (in the yielded set) every foreign process
    seen using it during the block: a run that another process disturbed is not valid."""
    client = redis_client()
    wait_until_quiet(client)
    token = uuid.uuid4().hex
    client.set(CANARY, token)
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            seen.update(foreign_clients(client))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()
        seen.update(foreign_clients(client))
        if client.get(CANARY) != token:
            seen.add("a FLUSHDB by another process (the canary key is gone)")
        client.delete(CANARY)
        client.close()


def undisturbed(action: Callable[[], T], what: str, attempts: int = 5) -> tuple[T, int]:
    """Run ``action`` until no foreign process touched our Redis database meanwhile;
    its result and the number of disturbed attempts thrown away."""
    for attempt in range(attempts):
        seen: set[str] = set()
        try:
            with watch_redis() as seen:
                result = action()
        except (Exception, SystemExit):
            if not seen:  # a failure of its own: not ours to hide
                raise
        if not seen:
            return result, attempt
        print(f"{what}: disturbed by {sorted(seen)}; repeating", file=sys.stderr, flush=True)
    raise SystemExit(f"{what}: disturbed {attempts} times in a row, giving up")


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a Django subprocess on bench.settings, free of the tests' knobs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAGEVIEW_", "TESTS_", "BENCH_")) and k != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        PYTHONPATH=str(ROOT),
        BENCH_REDIS_URL=redis_url(),
        **extra,
    )
    return env


def realistic_event(page: int, now: float | None = None) -> Any:
    """One article view as the middleware builds it (an anonymised IP, a Chrome user
    agent, a 32-hex visitor hash, a uuid4 hex event id)."""
    from django_pageviews.events import PK, PageViewEvent, Target

    event_id = uuid.uuid4().hex
    return PageViewEvent(
        event_id=event_id,
        timestamp=time.time() if now is None else now,
        target=Target(f"/articles/{page}/", "article-detail", "tests.article", PK, str(page)),
        ip_address=ANONYMISED_IP,
        user_agent=CHROME_UA,
        visitor_hash=hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest(),
    )


def backend_pid() -> int | None:
    """The PostgreSQL server process of Django's connection (None on other databases):
    its CPU time is the database's share of what a benchmark process does."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"
