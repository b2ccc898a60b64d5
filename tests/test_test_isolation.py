"""The suite never touches a Redis it did not start, unless TEST_REDIS_URL names one.

The strongest check runs part of the suite in a network namespace of its own, where a
decoy redis-server that this test starts plays the machine's Redis on 127.0.0.1:6379 with a
canary key in each of its databases 0-15: afterwards every canary must be there and the
decoy must have had no connection at all. Nothing is written to the machine's real Redis.
Run as ``python -m tests.test_test_isolation`` inside the namespace, this module is that
probe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from django_pageviews.conf import redis_url
from tests.processes import ROOT
from tests.redis_server import NAMED_SERVER_VARIABLE, PrivateRedis, named_database
from tests.settings import NO_REDIS_URL
from tests.settings import REDIS_URL as SUBPROCESS_REDIS_URL

MACHINE_PORT = 6379
DATABASES = range(16)
# Tests that use Redis (the fixtures, Celery workers and beat, uvicorn, flushers, the
# deploy check) and the settings' fallbacks; small enough to run again inside the probe.
PROBED_TESTS = [
    "tests/test_redis_pipeline.py",
    "tests/test_async_extras.py",
    "tests/test_checks.py",
    "tests/test_conf.py",
    "tests/test_end_to_end.py",
]


# The fixture's choice of server.


def test_without_the_variable_a_worker_starts_its_own_server() -> None:
    assert named_database({}, "gw0", 1234) is None
    assert named_database({NAMED_SERVER_VARIABLE: "  "}, "master", 1234) is None


def test_a_named_server_gives_each_worker_one_of_databases_1_to_15() -> None:
    env = {NAMED_SERVER_VARIABLE: "redis://127.0.0.1:6379"}
    chosen = {named_database(env, f"gw{i}", 100) for i in range(15)}
    assert chosen == {f"redis://127.0.0.1:6379/{db}" for db in range(1, 16)}
    assert named_database(env, "master", 14) == "redis://127.0.0.1:6379/15"
    assert named_database(env, "master", 15) == "redis://127.0.0.1:6379/1"


@pytest.mark.parametrize(
    ("named", "server"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379"),
        ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379"),
        ("redis://:secret@cache:6380/7", "redis://:secret@cache:6380"),
    ],
)
def test_a_database_in_the_variable_is_replaced_by_the_workers_own(named: str, server: str) -> None:
    assert named_database({NAMED_SERVER_VARIABLE: named}, "gw1", 0) == f"{server}/2"


def test_the_suite_uses_a_server_this_worker_started(redis_base_url: str) -> None:
    run = os.getpid() if "PYTEST_XDIST_WORKER" not in os.environ else os.getppid()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    named = named_database(os.environ, worker, run)
    if named is not None:  # the developer named a server: that one, nothing else
        assert redis_base_url == named
        return
    client = redis.Redis.from_url(redis_base_url)
    try:
        server = client.info("server")
    finally:
        client.close()
    assert server["tcp_port"] != MACHINE_PORT
    assert _parent(int(server["process_id"])) == os.getpid()


def test_settings_without_a_redis_reach_none() -> None:
    """The package's fallback (localhost:6379/0) is replaced by a socket that cannot exist."""
    assert redis_url() == (SUBPROCESS_REDIS_URL or NO_REDIS_URL)
    client = redis.Redis.from_url(NO_REDIS_URL)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


# The probe: part of the suite against a decoy on the machine's Redis address.


def _namespaces_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _namespaces_available(),
    reason="needs `unshare --net` (root): the decoy must own 127.0.0.1:6379",
)
def test_the_suite_leaves_a_redis_on_the_machines_address_untouched(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAGEVIEW_", "PYTEST_", "TESTS_", "TEST_", "DATABASE_URL"))
    }
    env["PYTHONPATH"] = str(ROOT)
    result_file = tmp_path / "probe.json"
    probe = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "tests.test_test_isolation", str(result_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result_file.exists(), probe.stdout[-3000:] + probe.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["pytest_exit"] == 0, result["pytest_output"]
    assert result["canaries"] == {str(db): f"canary-{db}" for db in DATABASES}
    assert result["keys"] == {str(db): 1 for db in DATABASES}
    assert result["connections"] == 0
    assert result["flushes"] == 0


def probe(result_file: Path) -> None:
    """Inside a fresh network namespace: a decoy Redis on 127.0.0.1:6379, canaries in each
    of its databases, part of the suite run, then what the decoy saw."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    decoy = PrivateRedis()
    decoy.port = MACHINE_PORT
    decoy.start()
    # One connection, kept open: every other connection the decoy counts is the suite's.
    client: Any = redis.Redis(port=MACHINE_PORT, single_connection_client=True)
    try:
        for db in DATABASES:
            client.execute_command("SELECT", db)
            client.set("canary", f"canary-{db}")
        client.config_resetstat()
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "no:cacheprovider"]
            + PROBED_TESTS,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        stats = client.info("stats")
        commands = client.info("commandstats")
        canaries, keys = {}, {}
        for db in DATABASES:
            client.execute_command("SELECT", db)
            value = client.get("canary")
            canaries[str(db)] = value.decode() if value is not None else None
            keys[str(db)] = client.dbsize()
        result = {
            "pytest_exit": tests.returncode,
            "pytest_output": tests.stdout[-3000:] + tests.stderr[-3000:],
            "canaries": canaries,
            "keys": keys,
            "connections": stats["total_connections_received"],
            "flushes": sum(
                commands.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("flushdb", "flushall")
            ),
        }
        result_file.write_text(json.dumps(result))
    finally:
        client.close()
        decoy.close()


if __name__ == "__main__":
    probe(Path(sys.argv[1]))
