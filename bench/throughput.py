"""What tracking costs a request: throughput and latency of a tiny page, tracking off
against on, and against baselines that do what the original 0.2.6 did.

    python -m bench.throughput [--quick]

Servers: uvicorn (uvloop, httptools, 1 worker, lifespan on) serving the async view
``/async/``, and gunicorn (1 sync worker) serving the sync view ``/plain/``, each on
bench.settings with one configuration (BENCH_TRACKING): ``off`` (no tracking middleware),
``inprocess``, ``redis``, and the baselines of bench/baseline.py, ``sync-insert`` (0.2.6's
in-process mode: an INSERT and a session save per view) and ``celery-message`` (its async
mode: one Celery message per view); with two middleware stacks (BENCH_STACK): ``project``
(sessions, common, auth, messages) and ``bare``. Every server is started once, all on CPU 1;
wrk (-t1, on CPU 0) then loads one at a time, runs interleaved round by round. The throttle
is at its default (20 s) and the visitors are what a proxied site sees: each request from
its own address (X-Forwarded-For from a trusted proxy) with one of 10,007 user agents
(bench/user_agents.browser_variants, one in 20 a crawler), more than any cache of the
package holds, so every lookup misses as for a long tail of real visitors.

A Celery worker (tests.celery_app, embedded beat every second, solo pool) runs throughout,
draining Redis into the database while the load runs (the baseline's messages go to a
queue of their own that it does not consume: the web process's cost is what is compared,
bench/baseline.py). It is pinned to wrk's core (CPU 0): on the server's core it would measure the
drain, which production runs on worker machines, as request cost. Its CPU time per run is
reported. The private redis-server the benchmark starts is pinned there too (every thread):
left to the scheduler it can run on the server's core, and the Redis path (and the
celery-message baseline) then loses to Redis's own CPU what a deployment spends on another
machine. The pinning is the same for every configuration, tracked or not; the web
process's own cost of talking to Redis (packing, system calls, replies) stays on its core
and is measured. A Redis named by BENCH_REDIS_URL is not touched (the text says so).
When the servers have stopped (SIGTERM: the lifespan shutdown flushes) and the worker has
drained, the views in each database are checked against the requests served.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.baseline import QUEUE as BASELINE_QUEUE  # noqa: E402
from bench.common import (  # noqa: E402
    PYTHON,
    ROOT,
    flush_redis,
    fmt,
    markdown_table,
    redis_client,
    subprocess_env,
    wait_for_quiet_machine,
)
from bench.report import Section, spread  # noqa: E402
from bench.user_agents import CRAWLERS, browser_variants  # noqa: E402
from tests.processes import free_port, running  # noqa: E402

BIN = Path(PYTHON).parent
UVICORN_CASES = [
    ("project", "off"),
    ("project", "inprocess"),
    ("project", "redis"),
    ("project", "sync-insert"),
    ("project", "celery-message"),
    ("bare", "off"),
    ("bare", "inprocess"),
    ("bare", "redis"),
]
GUNICORN_CASES = [(s, c) for s, c in UVICORN_CASES if s == "project"]
QUICK_CASES = [("project", "off"), ("project", "inprocess"), ("project", "redis")]
ASYNC_PATH, SYNC_PATH = "/async/", "/plain/"
ROUNDS = 3
SECONDS = (6, 1)  # measured, warm-up, per run
QUICK_SECONDS = (1, 1)
READY_PATH = "/status/201/"  # answered by Django, not a view
CONNECTIONS = {"uvicorn": 64, "gunicorn": 16}
USER_AGENTS = 10_007  # distinct: more than bots.CACHE_SIZE and the crawler verdict cache
CRAWLER_EVERY = 20
SERVER_CPU, CLIENT_CPU = "1", "0"
PIN = shutil.which("taskset") is not None
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
TARGETS = {"inprocess": 0.90, "redis": 0.95}
BASELINE_OF = {"inprocess": "sync-insert", "redis": "celery-message"}
PROFILES = [  # py-spy of the server under this load, and the per-view accounting
    "profiles/request-accounting.md",
    "profiles/request-redis-server.txt",
    "profiles/request-inprocess-before.txt",
    "profiles/request-redis-before.txt",
    "profiles/request-inprocess-after.txt",
    "profiles/request-redis-after.txt",
    "profiles/request-inprocess-one-visitor.txt",
    "profiles/request-off.txt",
]


@dataclass
class Server:
    kind: str  # uvicorn | gunicorn
    stack: str
    config: str
    url: str
    pid: int

    @property
    def name(self) -> str:
        return f"{self.kind} {self.stack} {self.config}"


@dataclass
class Result:
    server: Server
    rnd: int
    rps: float
    requests: int
    non_2xx: int
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU per request
    worker_cpu: float  # the Celery worker's CPU seconds during the run


def pinned(cpu: str, pin: bool = True) -> list[str]:
    return ["taskset", "-c", cpu] if PIN and pin else []


def pin_private_redis(cpu: str) -> str:
    """Pin the redis-server the benchmark started (bench.common's private one, a child of
    this process or, under ``python -m bench``, of its parent; listening on
    BENCH_REDIS_URL's port) to ``cpu``, all its threads; what was done, for the Section
    text. A server the user named is left where it runs."""
    port = str(urlsplit(os.environ.get("BENCH_REDIS_URL", "")).port or "")
    ours = (os.getpid(), os.getppid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "redis-server" not in cmdline or f":{port}" not in cmdline or ppid not in ours:
            continue
        if not PIN:
            return "the private redis-server (not pinned: no taskset)"
        for task in (proc / "task").iterdir():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task.name), {int(cpu)})
        return f"the private redis-server (CPU {cpu})"
    return "the Redis of BENCH_REDIS_URL (not started here: not pinned)"


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and of its live descendants (gunicorn's worker is a
    child of the master: the tree is summed)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids] + [g for k in kids for g in _children(int(k))]


def visitors_script(path: Path) -> None:
    """A wrk script: every request from a new address, user agents in rotation."""
    agents = browser_variants(USER_AGENTS)
    for i in range(0, USER_AGENTS, CRAWLER_EVERY):
        agents[i] = CRAWLERS[(i // CRAWLER_EVERY) % len(CRAWLERS)]
    quoted = ",\n".join('  "' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in agents)
    path.write_text(
        f"local agents = {{\n{quoted}\n}}\n"
        "local n = #agents\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        '  local ip = string.format("%d.%d.%d.%d", 11 + math.floor(i / 16777216) % 200,\n'
        "    math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)\n"
        '  return wrk.format("GET", nil, {["X-Forwarded-For"] = ip,\n'
        '    ["User-Agent"] = agents[i % n + 1]})\n'
        "end\n"
        # Each run of wrk its own million addresses: none is seen twice within a throttle.
        "init = function(args) i = tonumber(args[1] or 0) * 1000000 end\n"
    )


def wrk(url: str, seconds: int, connections: int, script: Path, seed: int) -> dict[str, float]:
    out = subprocess.run(
        [
            *pinned(CLIENT_CPU),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(seed),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    def find(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else 0.0

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    return {
        "requests": find(r"(\d+) requests in"),
        "non_2xx": find(r"Non-2xx or 3xx responses: (\d+)"),
        "rps": find(r"Requests/sec:\s+([\d.]+)"),
        "p50": latency("50"),
        "p99": latency("99"),
    }


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + READY_PATH, timeout=2) as response:
                if response.status == 201:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not answer:\n{log.read_text()[-3000:]}")


def database(workdir: Path, kind: str, stack: str, config: str) -> Path:
    """The SQLite file of a server: the async configurations share the worker's."""
    if config in ("redis", "celery-message"):
        return workdir / "async.sqlite3"
    return workdir / f"{kind}-{stack}-{config}.sqlite3"


def server_args(kind: str, port: int, workers: int = 1, pin: bool = True) -> list[str]:
    """The server's command: on SERVER_CPU, unless ``pin`` is off (bench/scale_out.py's
    several workers need every core)."""
    if kind == "uvicorn":
        return [
            *pinned(SERVER_CPU, pin),
            PYTHON,
            "-m",
            "uvicorn",
            "bench.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            "--loop=uvloop",
            "--http=httptools",
            f"--workers={workers}",
            "--lifespan=on",
            "--no-access-log",
            "--log-level=warning",
        ]
    return [
        *pinned(SERVER_CPU, pin),
        str(BIN / "gunicorn"),
        "bench.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--worker-class=sync",
        "--log-level=warning",
    ]


@contextmanager
def servers(
    cases: list[tuple[str, str, str]],
    workdir: Path,
    template: Path,
    env_extra: dict[str, str],
    workers: int = 1,
    pin: bool = True,
) -> Iterator[list[Server]]:
    """Every server of ``cases`` (kind, stack, config) running, each with ``workers``
    worker processes, and the Celery worker."""
    with ExitStack() as stack:
        for kind, st, config in cases:
            db = database(workdir, kind, st, config)
            if not db.exists():
                shutil.copyfile(template, db)
        worker_env = subprocess_env(
            BENCH_TRACKING="redis",
            BENCH_DATABASE_URL=f"sqlite:///{workdir / 'async.sqlite3'}",
            PAGEVIEW_TEST_BEAT_SECONDS="1",
            **env_extra,
        )
        worker = stack.enter_context(
            running(
                [
                    *pinned(CLIENT_CPU, pin),
                    str(BIN / "celery"),
                    "-A",
                    "tests.celery_app",
                    "worker",
                    "-B",
                    "--pool=solo",
                    "--loglevel=WARNING",
                    f"--schedule={workdir / 'beat-schedule'}",
                ],
                worker_env,
                workdir / "worker.log",
                stop_timeout=60,
            )
        )
        started = []
        for kind, st, config in cases:
            port = free_port()
            env = subprocess_env(
                BENCH_TRACKING=config,
                BENCH_STACK=st,
                BENCH_DATABASE_URL=f"sqlite:///{database(workdir, kind, st, config)}",
                **env_extra,
            )
            log = workdir / f"{kind}-{st}-{config}.log"
            process = stack.enter_context(
                running(server_args(kind, port, workers, pin), env, log, 120)
            )
            started.append(
                (Server(kind, st, config, f"http://127.0.0.1:{port}", process.pid), process, log)
            )
        for server, process, log in started:
            wait_ready(server.url, process, log)
        servers_ = [s for s, _, _ in started]
        servers_.append(Server("celery", "", "worker", "", worker.pid))
        yield servers_


def run_rounds(
    servers_: list[Server], rounds: int, seconds: int, warmup: int, script: Path
) -> list[Result]:
    worker = next(s for s in servers_ if s.kind == "celery")
    web = [s for s in servers_ if s.kind != "celery"]
    broker = redis_client()
    broker_db = broker.connection_pool.connection_kwargs.get("db", 12) + 1
    results = []
    seed = 0
    for rnd in range(rounds):
        order = web[rnd % len(web) :] + web[: rnd % len(web)]  # rotate: no fixed position
        for server in order:
            path = ASYNC_PATH if server.kind == "uvicorn" else SYNC_PATH
            conns = CONNECTIONS[server.kind]
            seed += 1
            wrk(server.url + path, warmup, conns, script, seed)
            cpu0, wcpu0 = process_cpu(server.pid), process_cpu(worker.pid)
            seed += 1
            out = wrk(server.url + path, seconds, conns, script, seed)
            cpu = process_cpu(server.pid) - cpu0
            results.append(
                Result(
                    server,
                    rnd,
                    out["rps"],
                    int(out["requests"]),
                    int(out["non_2xx"]),
                    out["p50"],
                    out["p99"],
                    cpu / max(out["requests"], 1) * 1e6,
                    process_cpu(worker.pid) - wcpu0,
                )
            )
            print(f"round {rnd + 1} {server.name}: {out['rps']:,.0f} req/s", file=sys.stderr)
            if server.config == "celery-message":
                # The baseline's messages (a queue no worker consumes): dropped.
                queue = broker.from_url(_db_url(broker_db))
                queue.delete(BASELINE_QUEUE)
                queue.close()
    broker.close()
    return results


def _db_url(db: int) -> str:
    """The benchmark's Redis server, database ``db`` (Celery's broker: bench.settings)."""
    return urlunsplit(urlsplit(os.environ["BENCH_REDIS_URL"])._replace(path=f"/{db}"))


def count(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        (views,) = conn.execute(
            "SELECT COALESCE(SUM(views), 0) FROM django_pageviews_pageviewdaily"
        ).fetchone()
        (raw,) = conn.execute("SELECT COUNT(*) FROM django_pageviews_pageview").fetchone()
        skipped = dict(
            conn.execute(
                "SELECT reason, SUM(requests) FROM django_pageviews_skippeddaily GROUP BY reason"
            ).fetchall()
        )
    finally:
        conn.close()
    return {"views": int(views), "raw": int(raw), **{k: int(v) for k, v in skipped.items()}}


def ratio(results: list[Result], kind: str, stack: str, config: str, base: str) -> list[float]:
    """Per round: this configuration's req/s over ``base``'s in the same round."""
    mine = {
        r.rnd: r.rps
        for r in results
        if r.server.kind == kind and (r.server.stack, r.server.config) == (stack, config)
    }
    theirs = {
        r.rnd: r.rps
        for r in results
        if r.server.kind == kind and (r.server.stack, r.server.config) == (stack, base)
    }
    return [mine[k] / theirs[k] for k in sorted(mine) if theirs.get(k)]


def table(results: list[Result], kind: str, stack: str) -> str:
    rows = []
    configs = [c for k, s, c in _cases(results) if k == kind and s == stack]
    for config in configs:
        rs = [
            r
            for r in results
            if (r.server.kind, r.server.stack, r.server.config) == (kind, stack, config)
        ]
        vs_off = ratio(results, kind, stack, config, "off")
        baseline = BASELINE_OF.get(config)
        vs_base = (
            ratio(results, kind, stack, config, baseline)
            if baseline and baseline in configs
            else []
        )
        off_cpu = [
            r.cpu_us
            for r in results
            if (r.server.kind, r.server.stack, r.server.config) == (kind, stack, "off")
        ]
        rows.append(
            [
                config,
                spread([r.rps for r in rs]),
                spread(vs_off, 2),
                spread(vs_base, 2) if vs_base else "",
                spread([r.p50_ms for r in rs], 1),
                spread([r.p99_ms for r in rs], 1),
                spread([r.cpu_us for r in rs]),
                f"{statistics.median([r.cpu_us for r in rs]) - statistics.median(off_cpu):+,.0f}"
                if off_cpu
                else "",
                spread([r.worker_cpu for r in rs], 2),
            ]
        )
    headers = [
        "tracking",
        "req/s",
        "vs off (same round)",
        "vs 0.2.6 baseline (same round)",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
        "vs off µs/req",
        "worker CPU s/run",
    ]
    return markdown_table(headers, rows)


def _cases(results: list[Result]) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    for r in results:
        key = (r.server.kind, r.server.stack, r.server.config)
        if key not in seen:
            seen.append(key)
    order = {
        c: i for i, c in enumerate(["off", "inprocess", "redis", "sync-insert", "celery-message"])
    }
    return sorted(seen, key=lambda k: (k[0] != "uvicorn", k[1] != "project", order[k[2]]))


def drain(workdir: Path, env_extra: dict[str, str]) -> str:
    env = subprocess_env(
        BENCH_TRACKING="redis",
        BENCH_DATABASE_URL=f"sqlite:///{workdir / 'async.sqlite3'}",
        **env_extra,
    )
    out = subprocess.run(
        [PYTHON, "manage.py", "pageviews_flush", "--settings=bench.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"pageviews_flush failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip()[-200:]


def count_table(results: list[Result], workdir: Path) -> str:
    """Per database: the 2xx answers wrk counted against what was stored and skipped.
    wrk stops on a timer without counting the answers in flight then (at most its
    connections per run, warm-ups included), so served = stored + skipped lies between the
    2xx counted and that many more; the baselines store raw rows only, without skip counts."""
    rows = []
    by_db: dict[Path, list[Result]] = {}
    for r in results:
        by_db.setdefault(
            database(workdir, r.server.kind, r.server.stack, r.server.config), []
        ).append(r)
    for db, rs in by_db.items():
        c = count(db)
        configs = sorted({f"{r.server.kind} {r.server.stack} {r.server.config}" for r in rs})
        skipped = sum(v for k, v in c.items() if k not in ("views", "raw"))
        rows.append(
            [
                "; ".join(configs),
                fmt(c["views"]),
                fmt(c["raw"]),
                fmt(c.get("bot", 0)),
                fmt(c.get("throttled", 0)),
                fmt(skipped),
            ]
        )
    headers = [
        "servers",
        "views (daily sum)",
        "raw rows",
        "skipped: bot",
        "skipped: throttled",
        "skipped: all",
    ]
    return markdown_table(headers, rows)


@contextmanager
def prepared(prefix: str) -> Iterator[tuple[Path, Path, Path]]:
    """A work folder with a migrated template database and wrk's script, on an empty Redis.

    Every round starts from the same state, so the servers' counts can be checked exactly.
    """
    redis = redis_client()
    flush_redis(redis)
    redis.close()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        template = workdir / "template.sqlite3"
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--settings=bench.settings", "-v0"],
            cwd=ROOT,
            env=subprocess_env(BENCH_DATABASE_URL=f"sqlite:///{template}"),
            check=True,
        )
        script = workdir / "visitors.lua"
        visitors_script(script)
        yield workdir, template, script


def run(quick: bool) -> Section:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    rounds = 1 if quick else ROUNDS
    seconds, warmup = QUICK_SECONDS if quick else SECONDS
    uvicorn_cases = QUICK_CASES if quick else UVICORN_CASES
    gunicorn_cases = [] if quick else GUNICORN_CASES
    cases = [("uvicorn", s, c) for s, c in uvicorn_cases] + [
        ("gunicorn", s, c) for s, c in gunicorn_cases
    ]
    env_extra = {"PAGEVIEW_THROTTLE_SECONDS": "20", "PAGEVIEW_EARLY_FLUSH_THRESHOLD": "10000"}
    started = time.monotonic()
    busy = wait_for_quiet_machine(limit=10)
    redis_where = pin_private_redis(CLIENT_CPU)  # before any server: the same for all
    with prepared("pageviews-throughput-") as (workdir, template, script):
        with servers(cases, workdir, template, env_extra) as running_servers:
            results = run_rounds(running_servers, rounds, seconds, warmup, script)
        drained = drain(workdir, env_extra)
        counts = count_table(results, workdir)
    elapsed = time.monotonic() - started
    body = [
        f"wrk -t1 (CPU 0) against one server at a time (CPU 1), {rounds} rounds, interleaved; "
        f"{warmup:g} s warm-up and {seconds:g} s measured per run; uvicorn: GET {ASYNC_PATH} "
        f"(async view), -c{CONNECTIONS['uvicorn']}; gunicorn: GET {SYNC_PATH} (sync view), "
        f"-c{CONNECTIONS['gunicorn']}. Each request from a new address with one of "
        f"{USER_AGENTS:,} user agents (1 in {CRAWLER_EVERY} a crawler); throttle 20 s; a Celery "
        f"worker (CPU 0) draining every second; {redis_where}. Cells: median (min-max) over "
        f"the rounds; ratios pair the runs of one round. Cores busy before the start: {busy:.2f}; "
        f"total {elapsed:.0f} s.",
    ]
    for kind, stack in [("uvicorn", "project"), ("uvicorn", "bare"), ("gunicorn", "project")]:
        if any(r.server.kind == kind and r.server.stack == stack for r in results):
            body += ["", f"**{kind}, {stack} stack**", "", table(results, kind, stack)]
    body += [
        "",
        "Counts once the servers stopped and Redis was drained:",
        "",
        counts,
        "",
        f"Drain: {drained}",
    ]
    headline = []
    for config, target in TARGETS.items():
        vs_off = ratio(results, "uvicorn", "project", config, "off")
        base = BASELINE_OF[config]
        vs_base = ratio(results, "uvicorn", "project", config, base)
        line = (
            f"request overhead, uvicorn + session/auth, {config}: "
            f"{statistics.median(vs_off):.2f} of untracked throughput (target >= {target:.2f})"
        )
        if vs_base:
            line += f", {statistics.median(vs_base):.1f}x the 0.2.6-like baseline ({base})"
        headline.append(line)
    return Section(
        title="Request overhead (throughput and latency)",
        body="\n".join(body),
        headline=headline,
        files=[p for p in PROFILES if (ROOT / "docs" / p).exists()],
    )


if __name__ == "__main__":
    section = run("--quick" in sys.argv)
    print(f"## {section.title}\n\n{section.body}\n")
    print("\n".join(section.headline))
