"""A real Redis Sentinel deployment for the tests: a primary, its replica and one Sentinel
(quorum 1), private ``redis-server`` processes on loopback ports.

The Sentinel declares the primary down after DOWN_AFTER_MS without an answer and fails
over to the replica. Its configuration file is its own (a Sentinel rewrites it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import redis

from tests.processes import free_port, wait_for
from tests.redis_server import PrivateRedis, reachable, server_binary

SERVICE = "pageviews-primary"
DOWN_AFTER_MS = 1000


class PrivateSentinel:
    def __init__(self) -> None:
        self.primary = PrivateRedis()
        self.replica = PrivateRedis()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pageviews-sentinel-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", self.port)]

    @property
    def url(self) -> str:
        """PAGEVIEW_REDIS_URL: the service's name as the host."""
        return f"redis://{SERVICE}/0"

    def start(self) -> None:
        try:
            self.primary.start()
            self.replica.options += ["--replicaof", "127.0.0.1", str(self.primary.port)]
            self.replica.start()
            config = self.dir / "sentinel.conf"
            config.write_text(
                f"port {self.port}\n"
                "bind 127.0.0.1\n"
                f"dir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self.process = subprocess.Popen(
                [server_binary(), str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for(self.replica_in_sync, "the replica in sync")
            wait_for(lambda: self.primary_port() == self.primary.port, "the Sentinel")
        except BaseException:
            self.close()
            raise

    def primary_port(self) -> int | None:
        """The primary's port as the Sentinel names it (None if it does not answer)."""
        if not reachable(f"redis://127.0.0.1:{self.port}/0"):
            return None
        client = redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)
        try:
            address: Any = client.sentinel_get_master_addr_by_name(SERVICE)
            return int(address[1]) if address else None
        except redis.RedisError:
            return None
        finally:
            client.close()

    def promoted(self) -> bool:
        """The Sentinel names the replica as the primary, in the state redis-py's clients
        accept (a primary, not down): the failover is over."""
        client = redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)
        try:
            state: Any = client.sentinel_master(SERVICE)
        except redis.RedisError:
            return False
        finally:
            client.close()
        return (
            int(state["port"]) == self.replica.port
            and state["is_master"]
            and not (state["is_sdown"] or state["is_odown"])
        )

    def replica_in_sync(self) -> bool:
        client = redis.Redis(port=self.replica.port, socket_timeout=1, decode_responses=True)
        try:
            return client.info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False
        finally:
            client.close()

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
        self.replica.close()
        self.primary.close()
        shutil.rmtree(self.dir, ignore_errors=True)
