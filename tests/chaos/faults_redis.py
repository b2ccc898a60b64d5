"""A redis-server of the chaos tests' own, which they pause, kill, restart empty and fill.

Not ``tests.redis_server.PrivateRedis``: these tests need a crash (SIGKILL, no
persistence: it comes back empty on the same port) and a memory limit, and nothing here
ever touches a Redis it did not start.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.processes import free_port
from tests.redis_server import reachable, server_binary


class ChaosRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pageviews-chaos-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or start again) on the same port, empty: no RDB, no AOF."""
        self.process = subprocess.Popen(
            [
                server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not reachable(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """A crash: SIGKILL, and what the server held is gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> Any:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def reset(self) -> None:
        """Empty this (our own) server and lift any memory limit a test set."""
        with self.client() as client:
            client.config_set("maxmemory", 0)
            client.config_set("maxmemory-policy", "noeviction")
            client.flushall()
            client.config_resetstat()

    def limit_memory(self, headroom: int) -> int:
        """``maxmemory`` at what the server uses now plus ``headroom`` bytes, with
        ``noeviction`` (the README's advice): writes past it are refused with OOM."""
        with self.client() as client:
            limit = int(client.info("memory")["used_memory"]) + headroom
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", limit)
        return limit

    def oom_errors(self) -> int:
        """Commands refused for memory so far (INFO errorstats)."""
        with self.client() as client:
            stat = client.info("errorstats").get("errorstat_OOM", {})
        return int(stat.get("count", 0)) if isinstance(stat, dict) else 0

    def used_memory(self) -> int:
        with self.client() as client:
            return int(client.info("memory")["used_memory"])
