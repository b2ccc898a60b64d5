"""Clients of a Redis primary that Sentinel names (``PAGEVIEW_REDIS_SENTINELS``).

As in django-redis, the URL's host is the service name Sentinel monitors
(``redis://mymaster/0``); its database, user, password and scheme (``rediss://``: TLS)
apply to the primary's connections. redis-py's ``Sentinel.master_for`` asks the
Sentinels for the primary's address before each new connection and drops the pooled
connections to a primary that was demoted, so a failover costs the commands in flight
(they fail and reach the callers' fallback) and no restart.

``master_for`` leaves the Sentinels' own clients open when the primary's client is
closed; the classes here close them with it, so that closing this package's client
closes every socket it opened.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.connection import parse_url


class SentinelPrimary(redis.Redis):
    def close(self) -> None:
        pool: Any = self.connection_pool  # a SentinelConnectionPool (master_for)
        manager = pool.sentinel_manager
        try:
            super().close()
        finally:
            manager.close()


class AsyncSentinelPrimary(redis.asyncio.Redis):
    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pool: Any = self.connection_pool  # a SentinelConnectionPool (master_for)
        manager = pool.sentinel_manager
        try:
            await super().aclose(close_connection_pool)
        finally:
            await manager.aclose()


def service_options(url: str) -> tuple[str, dict[str, Any]]:
    """The service name and the primary's connection options that ``url`` gives."""
    parsed = parse_url(url)  # type: ignore[no-untyped-call]
    service = str(parsed.pop("host", "") or "")
    parsed.pop("port", None)
    if parsed.pop("connection_class", None) is not None:  # rediss://
        parsed["ssl"] = True
    return service, parsed


def make_primary(
    sentinels: list[tuple[str, int]], url: str, options: dict[str, Any], asyncio: bool
) -> Any:
    """The client of the primary of ``url``'s service; the Sentinels are asked with the
    same socket timeouts."""
    service, from_url = service_options(url)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    addresses = [(str(host), int(port)) for host, port in sentinels]
    if asyncio:
        manager: Any = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            addresses, sentinel_kwargs=timeouts
        )
        return manager.master_for(service, redis_class=AsyncSentinelPrimary, **from_url, **options)
    manager = redis.sentinel.Sentinel(addresses, sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    return manager.master_for(service, redis_class=SentinelPrimary, **from_url, **options)
