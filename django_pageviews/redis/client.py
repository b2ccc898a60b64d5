"""The synchronous Redis client of this process (WSGI producers, Celery tasks, reads).

Created on first use, never at import time, and again after a fork: a connection pool
must not be shared between processes. Timeouts are short and retries off, because the
callers have their own fallback and must never hang on Redis.

With ``PAGEVIEW_REDIS_CLUSTER`` the URL names one node of a Redis Cluster and the client
is redis-py's cluster client (``redis.cluster.RedisCluster``, or its asyncio twin), which
finds the other nodes and follows MOVED redirections itself. A URL cannot say "cluster"
(redis-py, django-redis and kombu have no such scheme; decision 39), hence the setting.
Every key of a shard of the buffer shares its hash tag (redis/buffer.py), so each script
and pipeline of a shard goes to one node.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from django_pageviews import forks
from django_pageviews.conf import PREFIX, conf, redis_url

_lock = threading.Lock()
_client: Any = None
_url = ""


def client_options() -> dict[str, Any]:
    from redis.backoff import NoBackoff

    return {
        "socket_timeout": conf.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": conf.REDIS_CONNECT_TIMEOUT,
        "decode_responses": True,
        "retry_on_timeout": False,
        "health_check_interval": 30,
        "_backoff": NoBackoff,
    }


def make_client(asyncio: bool = False, url: str | None = None) -> Any:
    """A client for ``url`` (the configured one by default): a cluster client when
    PAGEVIEW_REDIS_CLUSTER is on. No retries: a failed command reaches the caller's
    fallback at once (a cluster client still follows MOVED and ASK redirections)."""
    url = url or redis_url()
    options = client_options()
    backoff = options.pop("_backoff")
    if conf.REDIS_CLUSTER:
        # Not a keyword of the asyncio cluster client (the sync one drops it): the retry
        # object without retries says the same.
        del options["retry_on_timeout"]
    if conf.REDIS_SENTINELS:
        import redis.asyncio.retry
        import redis.retry

        from .sentinels import make_primary

        retries = redis.asyncio.retry.Retry if asyncio else redis.retry.Retry
        options["retry"] = retries(backoff(), 0)
        return make_primary(list(conf.REDIS_SENTINELS), url, options, asyncio)
    if asyncio:
        import redis.asyncio
        import redis.asyncio.cluster
        import redis.asyncio.retry

        retry = redis.asyncio.retry.Retry(backoff(), 0)
        if conf.REDIS_CLUSTER:
            return redis.asyncio.cluster.RedisCluster.from_url(url, retry=retry, **options)
        return redis.asyncio.Redis.from_url(url, retry=retry, **options)
    import redis
    import redis.cluster
    import redis.retry

    if conf.REDIS_CLUSTER:
        # Connects at once, to read the slot map: raises when no node answers (the
        # callers' fallback takes the views; the next call tries again).
        return redis.cluster.RedisCluster.from_url(
            url, retry=redis.retry.Retry(backoff(), 0), **options
        )
    return redis.Redis.from_url(url, retry=redis.retry.Retry(backoff(), 0), **options)


def eviction_policies(client: Any) -> list[str | None]:
    """``maxmemory-policy`` of the server, or of every primary of a cluster (CONFIG GET
    goes to one node by default: the buffer lives on whichever primary its slot is)."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        # Typed as one reply; with several nodes redis-py answers node name -> reply.
        replies: Any = client.config_get("maxmemory-policy", target_nodes=RedisCluster.PRIMARIES)
        return [reply.get("maxmemory-policy") for reply in replies.values()]
    return [client.config_get("maxmemory-policy").get("maxmemory-policy")]


def get_client() -> Any:
    """The process's client for the configured URL (a new one if the URL changed: a client
    made by another thread while settings changed must not outlive the change)."""
    global _client, _url
    forks.check()
    url = redis_url()
    if _client is None or _url != url:
        with _lock:
            if _client is None or _url != url:
                if _client is not None:
                    _client.close()
                _client, _url = make_client(url=url), url
    return _client


def close_client() -> None:
    global _client
    forks.check()
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


@forks.after_fork
def _forget_in_child() -> None:
    # The parent's client, unclosed: closing it here would shut connections the parent
    # is using. The lock may have been held by a parent thread at the fork.
    global _client, _lock
    _client, _lock = None, threading.Lock()


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(PREFIX + "REDIS") or setting == "CELERY_BROKER_URL":
        close_client()
