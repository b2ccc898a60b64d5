"""The synchronous Redis client of this process (WSGI producers, Celery tasks, reads).

Created on first use, never at import time, and again after a fork: a connection pool
must not be shared between processes. Timeouts are short and retries off, because the
callers have their own fallback and must never hang on Redis.
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
    url = url or redis_url()
    options = client_options()
    backoff = options.pop("_backoff")
    if asyncio:
        import redis.asyncio
        import redis.asyncio.retry

        retry = redis.asyncio.retry.Retry(backoff(), 0)
        return redis.asyncio.Redis.from_url(url, retry=retry, **options)
    import redis
    import redis.retry

    return redis.Redis.from_url(url, retry=redis.retry.Retry(backoff(), 0), **options)


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
