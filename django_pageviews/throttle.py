"""The same visitor reloading the same page within PAGEVIEW_THROTTLE_SECONDS counts once.

Kept in process memory: no I/O on the request path. The table is bounded; when full,
expired entries go first, then the oldest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

MAX_ENTRIES = 200_000


class Throttle:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def allow(self, key: Hashable, seconds: float, now: float | None = None) -> bool:
        """True when ``key`` was not seen within ``seconds``; records it if so."""
        if seconds <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            until = self._until.get(key)
            if until is not None and until > now:
                return False
            if until is None and len(self._until) >= self._max_entries:
                self._evict(now)
            self._until.pop(key, None)  # re-insert at the end: dict order is age order
            self._until[key] = now + seconds
            return True

    def _evict(self, now: float) -> None:
        expired = [k for k, until in self._until.items() if until <= now]
        for k in expired:
            del self._until[k]
        while len(self._until) >= self._max_entries:
            del self._until[next(iter(self._until))]

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


throttle = Throttle()


def allow_once_everywhere(key: str, seconds: float) -> bool:
    """True the first time ``key`` is seen within ``seconds`` in any process: Redis
    ``SET NX PX`` in async mode, else the default cache's atomic ``add`` (shared only if
    the cache is: configure Redis or Memcached, not the per-process local-memory cache)."""
    if seconds <= 0:
        return True
    from .conf import conf

    if conf.ASYNC_PROCESSING:
        from .redis_buffer import Keys
        from .redis_client import get_client

        return bool(
            get_client().set(
                Keys.current().prefix + "throttle:" + key, 1, nx=True, px=int(seconds * 1000)
            )
        )
    from django.core.cache import cache

    return bool(cache.add("pageviews:throttle:" + key, 1, timeout=seconds))
