"""Where the numbers come from: the commit, the versions of everything measured, and the
machine, read when ``python -m bench`` starts (before its own load), for the head of
docs/benchmarks.md. Every probe is best effort: what cannot be read says why."""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.common import MYSQL_URL, POSTGRES_URL, ROOT

# Paths the command writes itself: changes there do not make the measured code "dirty".
OUTPUTS = ("docs/benchmarks.md", "docs/profiles/")
PACKAGES = (
    ("Python", ""),
    ("Django", "django"),
    ("redis-py", "redis"),
    ("hiredis", "hiredis"),
    ("psycopg", "psycopg"),
    ("uvicorn", "uvicorn"),
    ("uvloop", "uvloop"),
    ("httptools", "httptools"),
    ("Celery", "celery"),
)


def _run(*args: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    return (done.stdout + done.stderr).rstrip()  # porcelain lines start with a space


def commit() -> tuple[str, bool]:
    """The short commit id and whether code differs from it (the outputs aside)."""
    head = _run("git", "rev-parse", "--short", "HEAD")
    if not re.fullmatch(r"[0-9a-f]{4,40}", head):
        return "unknown (not a git checkout)", False
    return head, dirty(_run("git", "status", "--porcelain", "--untracked-files=normal"))


def dirty(porcelain: str) -> bool:
    """Whether ``git status --porcelain`` shows a change outside the command's outputs."""
    changed = [line[3:] for line in porcelain.splitlines() if len(line) > 3]
    return any(not path.startswith(OUTPUTS) for path in changed)


def _package(name: str) -> str:
    if not name:
        return platform.python_version()
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def redis_server() -> str:
    url = os.environ.get("BENCH_REDIS_URL")
    if url:
        import redis

        try:
            with redis.Redis.from_url(url, socket_connect_timeout=3) as client:
                info = {**client.info("server"), **client.info("memory")}
                return f"{info['redis_version']} ({info.get('mem_allocator', '?')})"
        except redis.RedisError as exc:
            return f"unavailable ({exc})"
    from tests.redis_server import server_binary

    found = re.search(r"v=(\S+).*malloc=(\S+)", _run(server_binary(), "--version"))
    return f"{found.group(1)} ({found.group(2)})" if found else "unavailable"


def postgresql() -> str:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"
    except Exception as exc:  # any failure is a fact to print, not a reason to stop
        return f"unavailable ({exc.__class__.__name__})"


def mariadb() -> str:
    found = re.match(r"mysql://([^@/:]+)(?::([^@/]*))?@([^:/]+)(?::(\d+))?", MYSQL_URL)
    if found is None:
        return f"unavailable (cannot parse {MYSQL_URL})"
    user, password, host, port = found.groups()
    try:
        import MySQLdb  # type: ignore[import-untyped]

        conn = MySQLdb.connect(
            host=host, user=user, passwd=password or "", port=int(port or 3306), connect_timeout=3
        )
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT VERSION()")
            return str(cursor.fetchone()[0])
        finally:
            conn.close()
    except Exception as exc:  # as above
        return f"unavailable ({exc.__class__.__name__})"


def wrk() -> str:
    found = re.search(r"wrk (\S+)", _run("wrk", "-v"))
    return found.group(1) if found else "not installed"


def versions() -> list[tuple[str, str]]:
    rows = [(label, _package(name)) for label, name in PACKAGES]
    rows += [
        ("Redis server", redis_server()),
        ("PostgreSQL", postgresql()),
        ("SQLite", sqlite3.sqlite_version),
        ("MariaDB", mariadb()),
        ("wrk", wrk()),
    ]
    return rows


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def machine() -> list[tuple[str, str]]:
    load = os.getloadavg()
    return [
        ("cores (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU", _cpu_model()),
        ("memory", _memory()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("load at start (1, 5, 15 min)", ", ".join(f"{v:.2f}" for v in load)),
    ]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
