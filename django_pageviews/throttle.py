"""A visitor reloading a page within PAGEVIEW_THROTTLE_SECONDS counts once, in any process.

First in process memory (bounded; when full, expired entries go first, then the oldest),
which catches reloads at no cost. Then, for reloads that another process served: in
async mode, in the batch, with one pipeline of ``SET NX PX`` per micro-batch (never a
round trip per request); otherwise on the request path through the default cache's atomic
``add``, when that cache is shared (a per-process cache adds nothing to the first check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from functools import cache as memoize
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.commands.core import AsyncScript, Script

from . import stats
from .conf import conf
from .events import PageViewEvent
from .log_limit import LogLimit
from .redis_buffer import Keys

logger = logging.getLogger(__name__)

MAX_ENTRIES = 200_000
CACHE_PREFIX = "pageviews:throttle:"

# KEYS: the throttle keys of a micro-batch; ARGV: the milliseconds left in each one's window.
# One script call rather than a pipeline of SETs: redis-py packs and parses each command
# of a pipeline in Python (with a timer per reply under asyncio), which cost three
# quarters of shipping a micro-batch (docs/profiles/). The keys share the prefix's hash tag.
# A full Redis refuses the first SET (deny-oom), before anything is written.
FIRST_VIEWS = """
local first = {}
for i, key in ipairs(KEYS) do
  first[i] = redis.call('SET', key, '1', 'NX', 'PX', ARGV[i]) and 1 or 0
end
return first
"""
_first_views = Script(None, FIRST_VIEWS.encode())  # type: ignore[arg-type]
_afirst_views = AsyncScript(None, FIRST_VIEWS.encode())  # type: ignore[arg-type]


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
        _failed()
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
        _failed()
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


def redis_prefix() -> str:
    return Keys.current().prefix + "throttle:"


@memoize
def _shared_cache() -> bool:
    return not isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache | DummyCache)


@receiver(setting_changed)
def _caches_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "CACHES":
        _shared_cache.cache_clear()


_failure_log = LogLimit()


def _failed() -> None:
    stats.incr(stats.THROTTLE_ERROR)
    if _failure_log.due():
        logger.warning("The page-view throttle could not reach its store.", exc_info=True)


def _commands(events: Sequence[PageViewEvent], prefix: str) -> list[tuple[int, str, int]]:
    """(event index, key, milliseconds left in its window) for each event to check."""
    seconds, now = conf.THROTTLE_SECONDS, time.time()
    out = []
    for i, e in enumerate(events):
        left = int((e.timestamp + seconds - now) * 1000)
        if e.throttle_key and left > 0:
            out.append((i, prefix + e.throttle_key, left))
    return out


def _script_args(commands: list[tuple[int, str, int]]) -> tuple[list[str], list[int]]:
    return [key for _, key, _ in commands], [ms for _, _, ms in commands]


def _keep(
    events: Sequence[PageViewEvent], commands: list[tuple[int, str, int]], results: list[Any]
) -> list[PageViewEvent]:
    refused = {i for (i, _, _), ok in zip(commands, results, strict=True) if not ok}
    if refused:
        stats.incr(stats.SKIP_THROTTLED, len(refused))
    return [e for i, e in enumerate(events) if i not in refused]


def first_views(client: Any, events: Sequence[PageViewEvent], prefix: str) -> list[PageViewEvent]:
    """The events that are the first view of their page by their visitor in any process
    within the window (async mode, sync client). If Redis fails, all of them: a view is
    never lost to the throttle."""
    commands = _commands(events, prefix)
    if not commands:
        return list(events)
    keys, args = _script_args(commands)
    try:
        results = _first_views(keys=keys, args=args, client=client)
    except Exception:
        _failed()
        return list(events)
    return _keep(events, commands, results)


async def afirst_views(
    client: Any, events: Sequence[PageViewEvent], prefix: str
) -> list[PageViewEvent]:
    """``first_views`` on a redis.asyncio client."""
    commands = _commands(events, prefix)
    if not commands:
        return list(events)
    keys, args = _script_args(commands)
    try:
        results = await _afirst_views(keys=keys, args=args, client=client)
    except Exception:
        _failed()
        return list(events)
    return _keep(events, commands, results)


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
            from .redis_client import get_client

            client = get_client()
            return bool(client.set(redis_prefix() + key, 1, nx=True, px=int(seconds * 1000)))
        return bool(cache.add(CACHE_PREFIX + key, 1, timeout=seconds))
    except Exception:
        _failed()
        return True
