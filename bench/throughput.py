"""Request throughput of a tiny async page under uvicorn, tracking off versus on.

    .venv/bin/python bench/throughput.py

Three configurations of bench.settings (BENCH_TRACKING): ``off`` (no PageViewMiddleware),
``inprocess`` (PAGEVIEW_ASYNC_PROCESSING False) and ``redis`` (True, Redis database 12),
each with two middleware stacks (BENCH_STACK): ``project`` (the tests' sessions, common,
auth and messages middleware before ours) and ``bare`` (ours alone, or nothing).

Each run starts its own uvicorn (uvloop, 1 worker, lifespan on, no access log) on a fresh
copy of a migrated SQLite file, warms up, measures with wrk (a closed loop: -t1 -c64),
stops the server with SIGTERM (its lifespan shutdown flushes), drains Redis with
``manage.py pageviews_flush`` and counts the views in the database. wrk stops on a timer
and does not count the responses still in flight then, so a last run per tracked
configuration sends an exact number of requests with an httpx client and checks that the
database holds exactly that many views.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import (  # noqa: E402
    CHROME_UA,
    PYTHON,
    ROOT,
    flush_redis,
    fmt,
    markdown_table,
    median,
    redis_client,
    subprocess_env,
    undisturbed,
    wait_for_quiet_machine,
)
from tests.processes import free_port, running  # noqa: E402

CONFIGS = ("off", "inprocess", "redis")
STACKS = ("project", "bare")
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
WARMUP_SECONDS = 2
MEASURE_SECONDS = int(os.environ.get("BENCH_SECONDS", 10))
CONNECTIONS = 64
EXACT_REQUESTS = int(os.environ.get("BENCH_EXACT_REQUESTS", 5_000))
PATH = "/async/"  # tests.views.async_page: an async view returning a 5-byte page
READY_PATH = "/status/201/"  # answered by Django, but not a view (status 201)
KEY_PREFIX = "{pageviews}:"
# The server on one core, wrk on the other: less scheduler noise on a 2-core machine, and
# the single-worker server is then CPU-bound (BENCH_PIN=0 lets the kernel place them).
PIN = os.environ.get("BENCH_PIN", "1") != "0" and shutil.which("taskset") is not None
SERVER_CPU, CLIENT_CPU = "1", "0"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class WrkResult:
    requests: int
    non_2xx: int
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: str

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


@dataclass
class CpuUse:
    """CPU seconds spent during the measured window, by whom (the machine is shared)."""

    seconds: float
    server: float
    client: float
    machine: float

    @property
    def others_cores(self) -> float:
        """Cores busy with other processes (Redis, other users' work, the kernel)."""
        return max(0.0, self.machine - self.server - self.client) / self.seconds


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime, all threads


def machine_cpu() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured_wrk(url: str, seconds: int, server_pid: int) -> tuple[WrkResult, CpuUse]:
    """wrk, with the CPU time the server, wrk and the whole machine spent meanwhile."""
    before = (time.monotonic(), process_cpu(server_pid), children_cpu(), machine_cpu())
    result = wrk(url, seconds)
    after = (time.monotonic(), process_cpu(server_pid), children_cpu(), machine_cpu())
    return result, CpuUse(*(b - a for a, b in zip(before, after, strict=True)))


@dataclass
class Outcome:
    """What reached the database (and what is left in Redis) after a server stopped."""

    db_views: int = 0
    raw_rows: int = 0
    drain: str = ""
    redis_left: int = 0
    counters: dict[str, str] = field(default_factory=dict)
    server_errors: int = 0


@dataclass
class Run:
    stack: str
    config: str
    rep: int
    warmup: WrkResult
    measured: WrkResult
    cpu: CpuUse
    outcome: Outcome

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu.server / self.measured.requests * 1e6


def wrk(url: str, seconds: int) -> WrkResult:
    pin = ["taskset", "-c", CLIENT_CPU] if PIN else []
    out = subprocess.run(
        [
            *pin,
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"User-Agent: {CHROME_UA}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    def find(pattern: str, default: str = "0") -> str:
        match = re.search(pattern, out)
        return match.group(1) if match else default

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    return WrkResult(
        requests=int(find(r"(\d+) requests in")),
        non_2xx=int(find(r"Non-2xx or 3xx responses: (\d+)")),
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        socket_errors=find(r"Socket errors: (.*)", "none"),
    )


async def exact_load(url: str, total: int) -> int:
    """Send ``total`` requests over CONNECTIONS connections; the number of 2xx answers."""
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    remaining = iter(range(total))
    ok = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        for _ in remaining:
            response = await client.get(url)
            ok += response.is_success

    headers = {"User-Agent": CHROME_UA}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONNECTIONS)))
    return ok


def wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + READY_PATH, timeout=2) as response:
                if response.status == 201:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"uvicorn did not answer:\n{log.read_text()[-3000:]}")


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """A uvicorn server for the block (base URL, pid); stopped gracefully with SIGTERM."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        *(["taskset", "-c", SERVER_CPU] if PIN else []),
        PYTHON,
        "-m",
        "uvicorn",
        "bench.asgi:application",
        "--host=127.0.0.1",
        f"--port={port}",
        "--loop=uvloop",
        "--workers=1",
        "--lifespan=on",
        "--no-access-log",
        "--log-level=warning",
    ]
    with running(args, env, log, stop_timeout=120) as server:
        wait_ready(base, server, log)
        yield base, server.pid


def count_views(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        (daily,) = conn.execute(
            "SELECT COALESCE(SUM(views), 0) FROM django_pageviews_pageviewdaily"
        ).fetchone()
        (raw,) = conn.execute("SELECT COUNT(*) FROM django_pageviews_pageview").fetchone()
    finally:
        conn.close()
    return int(daily), int(raw)


@contextmanager
def server_run(
    stack: str, config: str, name: str, template: Path, workdir: Path
) -> Iterator[tuple[str, int, Outcome]]:
    """Serve ``config`` on a fresh database; once stopped, drain and fill in the outcome."""
    db = workdir / f"{name}.sqlite3"
    shutil.copyfile(template, db)
    env = subprocess_env(
        BENCH_TRACKING=config, BENCH_STACK=stack, BENCH_DATABASE_URL=f"sqlite:///{db}"
    )
    redis = redis_client()
    if config == "redis":
        flush_redis(redis)
    wait_for_quiet_machine()
    log = workdir / f"uvicorn-{name}.log"
    outcome = Outcome()
    try:
        with serving(env, log) as (base, pid):
            yield base, pid, outcome
        outcome.server_errors = log.read_text(errors="replace").count("Traceback")
        if config == "redis":
            drained = subprocess.run(
                [PYTHON, "manage.py", "pageviews_flush", "--settings=bench.settings"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if drained.returncode:
                raise SystemExit(f"pageviews_flush failed:\n{drained.stderr[-3000:]}")
            found = re.search(r"Drained .*", drained.stdout)
            outcome.drain = found.group(0) if found else drained.stdout.strip()[-200:]
            outcome.redis_left = (
                int(redis.hget(KEY_PREFIX + "dims", "t") or 0)
                + redis.hlen(KEY_PREFIX + "pending")
                + redis.llen(KEY_PREFIX + "events")
                + redis.zcard(KEY_PREFIX + "claims")
            )
            outcome.counters = redis.hgetall(KEY_PREFIX + "counters")
        outcome.db_views, outcome.raw_rows = count_views(db)
    finally:
        redis.close()
        db.unlink(missing_ok=True)


def timed_run(stack: str, config: str, rep: int, template: Path, workdir: Path) -> Run:
    name = f"{stack}-{config}-{rep}"
    with server_run(stack, config, name, template, workdir) as (url, pid, outcome):
        warmup = wrk(url + PATH, WARMUP_SECONDS)
        measured, cpu = measured_wrk(url + PATH, MEASURE_SECONDS, pid)
    return Run(stack, config, rep, warmup, measured, cpu, outcome)


def exact_run(config: str, template: Path, workdir: Path) -> tuple[int, Outcome]:
    with server_run("project", config, f"exact-{config}", template, workdir) as (url, _, outcome):
        ok = asyncio.run(exact_load(url + PATH, EXACT_REQUESTS))
    return ok, outcome


def migrate(template: Path) -> None:
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--settings=bench.settings", "-v0"],
        cwd=ROOT,
        env=subprocess_env(BENCH_DATABASE_URL=f"sqlite:///{template}"),
        check=True,
    )


def throughput_table(runs: list[Run], stack: str) -> str:
    by_config = {c: [r for r in runs if r.config == c and r.stack == stack] for c in CONFIGS}
    base = median([r.measured.rps for r in by_config["off"]])
    base_cpu = median([r.cpu_us_per_request for r in by_config["off"]])
    rows: list[list[object]] = []
    for config, rs in by_config.items():
        rps = median([r.measured.rps for r in rs])
        cpu = median([r.cpu_us_per_request for r in rs])
        # Each run against the untracked run of the same round (they ran minutes apart
        # at most), which cancels slow changes in how busy the machine is.
        off = by_config["off"]
        paired = median([r.measured.rps / b.measured.rps for r, b in zip(rs, off, strict=True)])
        rows.append(
            [
                config,
                *(fmt(r.measured.rps) for r in rs),
                fmt(rps),
                f"{rps / base:.2f}",
                f"{paired:.2f}",
                fmt(median([r.measured.p50_ms for r in rs]), 1),
                fmt(median([r.measured.p99_ms for r in rs]), 1),
                fmt(cpu),
                f"{cpu - base_cpu:+,.0f}",
                " / ".join(f"{r.cpu.others_cores:.2f}" for r in rs),
            ]
        )
    runs_headers = [f"run {i + 1} req/s" for i in range(REPEATS)]
    headers = [
        "tracking",
        *runs_headers,
        "median req/s",
        "vs off (medians)",
        "vs off (same round, median)",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
        "vs off µs/req",
        "other processes, cores busy",
    ]
    return markdown_table(headers, rows)


def count_table(runs: list[Run]) -> str:
    rows: list[list[object]] = []
    for r in runs:
        if r.config == "off":
            continue
        ok = r.warmup.ok + r.measured.ok
        rows.append(
            [
                f"{r.stack} / {r.config} #{r.rep + 1}",
                fmt(r.warmup.ok),
                fmt(r.measured.ok),
                fmt(ok),
                fmt(r.outcome.db_views),
                fmt(r.outcome.raw_rows),
                f"{r.outcome.db_views - ok:+d}",
                "" if r.outcome.raw_rows == r.outcome.db_views else "raw rows ≠ views",
            ]
        )
    headers = [
        "run",
        "2xx warm-up",
        "2xx measured",
        "2xx total",
        "views in DB (daily sum)",
        "raw rows",
        "DB - 2xx",
        "note",
    ]
    return markdown_table(headers, rows)


def exact_table(exact: dict[str, tuple[int, Outcome]]) -> str:
    rows = [
        [
            config,
            fmt(EXACT_REQUESTS),
            fmt(ok),
            fmt(o.db_views),
            fmt(o.raw_rows),
            "yes" if o.db_views == ok == o.raw_rows else "NO",
        ]
        for config, (ok, o) in exact.items()
    ]
    headers = ["tracking", "requests sent", "2xx", "views in DB", "raw rows", "equal"]
    return markdown_table(headers, rows)


def details(runs: list[Run], exact: dict[str, tuple[int, Outcome]]) -> list[str]:
    lines = []
    named: list[tuple[str, Outcome, Run | None]] = [
        (f"{r.stack} / {r.config} #{r.rep + 1}", r.outcome, r) for r in runs
    ]
    named += [(f"exact / {c}", o, None) for c, (_ok, o) in exact.items()]
    for name, o, r in named:
        text = f"- {name}: tracebacks in server log: {o.server_errors}"
        if r is not None:
            text += f", server CPU {r.cpu_us_per_request:,.0f} µs/req"
            text += f", non-2xx: {r.warmup.non_2xx + r.measured.non_2xx}"
            text += f", socket errors: {r.measured.socket_errors}"
            if r.config == "off":
                text += f", views in DB: {o.db_views}"
        if o.drain:
            text += f"; {o.drain} Left in Redis: {o.redis_left}"
            extra = {k: v for k, v in o.counters.items() if not k.startswith("last_flush")}
            if extra:
                text += f"; counters: {extra}"
        lines.append(text)
    return lines


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    runs: list[Run] = []
    exact: dict[str, tuple[int, Outcome]] = {}
    discarded = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pageviews-bench-") as tmp:
        workdir = Path(tmp)
        template = workdir / "template.sqlite3"
        migrate(template)
        for rep in range(REPEATS):
            for stack in STACKS:
                for config in CONFIGS:
                    name = f"{stack}-{config}-{rep}"
                    timed = partial(timed_run, stack, config, rep, template, workdir)
                    run, thrown = undisturbed(timed, name) if config == "redis" else (timed(), 0)
                    discarded += thrown
                    runs.append(run)
                    print(f"{name}: {run.measured.rps:,.0f} req/s", file=sys.stderr, flush=True)
        for config in CONFIGS[1:]:
            counted = partial(exact_run, config, template, workdir)
            exact[config], thrown = undisturbed(counted, f"exact-{config}")
            discarded += thrown
        if keep := os.environ.get("BENCH_LOG_DIR"):  # the servers' logs, for a post-mortem
            Path(keep).mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copy(log, Path(keep) / log.name)
    redis = redis_client()
    flush_redis(redis)
    redis.close()

    print(f"GET {PATH} with a Chrome User-Agent; wrk -t1 -c{CONNECTIONS} -d{MEASURE_SECONDS}s")
    print(f"after a {WARMUP_SECONDS} s warm-up; {REPEATS} runs per configuration, interleaved;")
    if PIN:
        print(f"server pinned to CPU {SERVER_CPU}, wrk to CPU {CLIENT_CPU} (taskset);")
    print(f"total time {time.monotonic() - started:.0f} s; {discarded} disturbed Redis runs")
    print("thrown away and repeated (another process used the Redis database).")
    for stack in STACKS:
        print()
        print(f"Middleware stack: {stack}")
        print()
        print(throughput_table(runs, stack))
    print()
    print("Views in the database after shutdown (and drain) vs 2xx counted by wrk:")
    print()
    print(count_table(runs))
    print()
    print(f"Exact count check (project stack, {EXACT_REQUESTS} requests, httpx client):")
    print()
    print(exact_table(exact))
    print()
    print("\n".join(details(runs, exact)))


if __name__ == "__main__":
    main()
