"""A visitor reloading a page within PAGEVIEW_THROTTLE_SECONDS counts once, in any process.

First in process memory (bounded; when full, expired entries go first, then the oldest),
which catches reloads at no cost. Then, for reloads that another process served: in
async mode, in the batch, with one script of ``SET NX PX`` per micro-batch (never a round
trip per request; redis/throttle.py); otherwise on the request path through the default
cache's atomic ``add``, when that cache is shared (a per-process cache adds nothing to the
first check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from functools import cache as memoize

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import stats
from .conf import conf
from .log_limit import LogLimit

logger = logging.getLogger(__name__)

MAX_ENTRIES = 200_000
CACHE_PREFIX = "pageviews:throttle:"


class Throttle:
    """Keys seen within their window, bounded: a new key first removes the expired entries
    of its window; when the table is still full, the expired entries of every other window
    go (all of them), then the oldest. So the table holds the keys of the last
    ``seconds`` (at most ``max_entries``), and memory follows the traffic of one window.

    Eviction is O(1) amortised, never a scan: ``_until`` keeps every key in insertion order
    (an OrderedDict pops its front in O(1); a plain dict's ``next(iter())`` after many
    deletions at the front walks the holes), and each window length has its own OrderedDict
    in which insertion order is also expiry order, so expired entries are always a prefix.
    Each entry is removed at most once, so a full table under a flood of new visitors costs
    a few dictionary operations per call.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        # key -> (until, the OrderedDict of its window length)
        self._until: OrderedDict[Hashable, tuple[float, OrderedDict[Hashable, float]]] = (
            OrderedDict()
        )
        self._windows: dict[float, OrderedDict[Hashable, float]] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def allow(self, key: Hashable, seconds: float, now: float | None = None) -> bool:
        """True when ``key`` was not seen within ``seconds``; records it if so."""
        if seconds <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._until.get(key)
            if entry is not None:
                if entry[0] > now:
                    return False
                self._remove(key)  # re-inserted at the end: order is age order
            else:
                self._expire(self._windows.get(seconds), now)
                if len(self._until) >= self._max_entries:
                    self._evict(now)
            window = self._windows.get(seconds)
            if window is None:
                window = self._windows[seconds] = OrderedDict()
            window[key] = until = now + seconds
            self._until[key] = (until, window)
            return True

    def _remove(self, key: Hashable) -> None:
        _, window = self._until.pop(key)
        del window[key]

    def _expire(self, window: OrderedDict[Hashable, float] | None, now: float) -> None:
        """Remove the expired entries of a window (a prefix: its order is expiry order).
        Done for each new key, so that the table holds what its window holds: emptied of
        expired keys only when full, it would fill up to MAX_ENTRIES again and again on
        any site, and its dicts would keep the size of a full table (~0.5 kB a key)."""
        while window:
            key, until = next(iter(window.items()))
            if until > now:
                return
            window.popitem(last=False)
            del self._until[key]

    def _evict(self, now: float) -> None:
        for seconds, window in list(self._windows.items()):
            self._expire(window, now)
            if not window:
                del self._windows[seconds]
        while len(self._until) >= self._max_entries:
            self._remove(next(iter(self._until)))

    def clear(self) -> None:
        with self._lock:
            self._until.clear()
            self._windows.clear()


throttle = Throttle()


def cache_allows(key: str) -> bool:
    """In-process mode with a shared cache: False (counted as throttled) when another
    process counted this visitor's view of this page (``key``) within the window."""
    if not _cache_is_asked(key):
        return True
    try:
        added = bool(cache.add(CACHE_PREFIX + key, 1, timeout=conf.THROTTLE_SECONDS))
    except Exception:  # a cache outage must not cost views: count the view, say so
        store_failed()
        return True
    return _throttled_unless(added)


async def acache_allows(key: str) -> bool:
    """``cache_allows`` for async middleware: the cache's own async API, so that the event
    loop never waits on the cache (a database cache would even refuse to run there)."""
    if not _cache_is_asked(key):
        return True
    try:
        added = bool(await cache.aadd(CACHE_PREFIX + key, 1, timeout=conf.THROTTLE_SECONDS))
    except Exception:
        store_failed()
        return True
    return _throttled_unless(added)


def _cache_is_asked(key: str) -> bool:
    # Async mode checks in the batch; a per-process cache knows no more than the table.
    return (
        bool(key) and not conf.ASYNC_PROCESSING and conf.THROTTLE_SECONDS > 0 and (_shared_cache())
    )


def _throttled_unless(added: bool) -> bool:
    if not added:
        stats.incr(stats.SKIP_THROTTLED)
    return added


@memoize
def _shared_cache() -> bool:
    return not isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache | DummyCache)


@receiver(setting_changed)
def _caches_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "CACHES":
        _shared_cache.cache_clear()


_failure_log = LogLimit()


def store_failed() -> None:
    """The store (cache or Redis) failed: the view counts; counted, logged once a minute."""
    stats.incr(stats.THROTTLE_ERROR)
    if _failure_log.due():
        logger.warning("The page-view throttle could not reach its store.", exc_info=True)


def allow_once_everywhere(key: str, seconds: float) -> bool:
    """True the first time ``key`` is seen within ``seconds`` in any process: this
    process's table first (no round trip for a reload it saw), then Redis ``SET NX PX`` in
    async mode, else the default cache's atomic ``add`` (shared only if the cache is:
    configure Redis or Memcached, not the per-process local-memory cache). If that store
    fails the view counts: logged and counted as ``throttle_error``, never raised."""
    if seconds <= 0:
        return True
    if not throttle.allow(key, seconds):
        return False
    try:
        if conf.ASYNC_PROCESSING:
            from .redis.client import get_client
            from .redis.throttle import redis_prefix

            client = get_client()
            return bool(client.set(redis_prefix() + key, 1, nx=True, px=int(seconds * 1000)))
        return bool(cache.add(CACHE_PREFIX + key, 1, timeout=seconds))
    except Exception:
        store_failed()
        return True
