"""A redis-server of the chaos tests' own, which they pause, kill, restart empty and fill.

A ``PrivateRedis`` with what these tests add: a crash (SIGKILL; no persistence, so it
comes back empty on the same port) and a memory limit set while it runs. Nothing here
ever touches a Redis it did not start.
"""

from __future__ import annotations

import signal
from typing import Any

import redis

from tests.redis_server import PrivateRedis


class ChaosRedis(PrivateRedis):
    def kill(self) -> None:
        """A crash: SIGKILL, and what the server held is gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()

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
