"""The synchronous Redis client of this process (WSGI producers, Celery tasks, reads).

Created on first use, never at import time, and again after a fork: a connection pool
must not be shared between processes. Timeouts are short and retries off, because the
callers have their own fallback and must never hang on Redis.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import PREFIX, conf, redis_url

_lock = threading.Lock()
_client: Any = None
_pid = 0


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


def make_client(asyncio: bool = False) -> Any:
    options = client_options()
    backoff = options.pop("_backoff")
    if asyncio:
        import redis.asyncio
        import redis.asyncio.retry

        retry = redis.asyncio.retry.Retry(backoff(), 0)
        return redis.asyncio.Redis.from_url(redis_url(), retry=retry, **options)
    import redis
    import redis.retry

    return redis.Redis.from_url(redis_url(), retry=redis.retry.Retry(backoff(), 0), **options)


def get_client() -> Any:
    global _client, _pid
    if _client is None or _pid != os.getpid():
        with _lock:
            if _client is None or _pid != os.getpid():
                _client = make_client()
                _pid = os.getpid()
    return _client


def close_client() -> None:
    global _client
    with _lock:
        if _client is not None and _pid == os.getpid():
            _client.close()
        _client = None


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(PREFIX + "REDIS") or setting == "CELERY_BROKER_URL":
        close_client()
