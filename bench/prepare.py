"""What ``python -m bench`` sets up before the scenarios run: wrk, the bench extra, the
PostgreSQL database and a private redis-server. Nothing here empties anything: the
database is created when missing, and the Redis is one this process starts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from urllib.parse import urlsplit, urlunsplit

from bench.common import MYSQL_URL, POSTGRES_URL, ROOT, redis_url

INSTALL_EXTRA = f'{sys.executable} -m pip install -e "{ROOT}[bench]"'


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> None:
    """wrk drives the HTTP scenarios from a process of its own, in C, so that the load tool
    does not take the server's CPU. Installed with apt-get when absent and root."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("wrk is not installed: `apt-get install -y wrk` (as root); HTTP scenarios will fail")
        return
    log("installing wrk (apt-get install -y wrk)")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if _quietly(install) != 0:
        _quietly(["apt-get", "update", "-q"])
        _quietly(install)
    if not shutil.which("wrk"):
        log("apt-get could not install wrk; HTTP scenarios will fail")


def _quietly(args: list[str]) -> int:
    return subprocess.run(args, check=False, capture_output=True).returncode


def missing_bench_extra() -> list[str]:
    """The requirements of the ``bench`` extra (pyproject.toml) that are not installed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing = []
    for requirement in project["optional-dependencies"].get("bench", []):
        spec, _, marker = requirement.partition(";")
        if marker.strip() and not _marker_applies(marker):
            continue
        name = re.split(r"[\[<>=!~ ]", spec.strip(), maxsplit=1)[0]
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(spec.strip())
    return missing


def _marker_applies(marker: str) -> bool:
    from packaging.markers import Marker  # pip's own dependency: present with any pip

    return Marker(marker).evaluate()


def ensure_postgres() -> None:
    """Create the database of BENCH_POSTGRES_URL when it does not exist (never drop it:
    the scenarios truncate the package's own tables)."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        log('psycopg is not installed (the "postgres" extra); PostgreSQL scenarios will fail')
        return
    parts = urlsplit(POSTGRES_URL)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if conn.execute(query, (name,)).fetchone() is None:
                log(f"creating PostgreSQL database {name}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        log(f"PostgreSQL at {POSTGRES_URL} is not usable ({exc}); its scenarios will fail")


def ensure_mysql() -> None:
    """Create the database of BENCH_MYSQL_URL when it does not exist, as for PostgreSQL."""
    try:
        import MySQLdb
    except ImportError:
        log('mysqlclient is not installed (the "mysql" extra); MariaDB scenarios will fail')
        return
    parts = urlsplit(MYSQL_URL)
    name = parts.path.lstrip("/")
    try:
        conn = MySQLdb.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            connect_timeout=5,
        )
        try:
            conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        finally:
            conn.close()
    except MySQLdb.Error as exc:
        log(f"MariaDB at {MYSQL_URL} is not usable ({exc}); its scenarios will fail")


def start_redis() -> str:
    """The Redis every scenario shares: BENCH_REDIS_URL when given (a database the user
    lets them empty), else a private redis-server, stopped when this process exits. The
    URL goes to the scenarios' processes through the environment."""
    url = redis_url()
    log(f"Redis for the scenarios: {url}")
    return url
