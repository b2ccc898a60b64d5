"""Warnings about a lasting condition, logged at most once per interval per key.

A full buffer, an unreachable throttle store or a Redis outage hits every request until
it ends: logged each time, it would flood the log and cost the request path the log
call. Each is counted in ``stats`` every time; the log only says it is going on.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

MINUTE = 60.0
FOREVER = math.inf  # once per process


class LogLimit:
    """When each key was last logged; ``due`` says whether it may be logged again."""

    def __init__(
        self, interval: float = MINUTE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock  # tests pass a clock of their own
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def due(self, key: Hashable = None) -> bool:
        """True, and the time noted, when ``key`` was never logged or not for ``interval``
        seconds: two threads asking at once get one True."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return False
            self._last[key] = now
            return True

    def reset(self, key: Hashable = None) -> None:
        """Log ``key`` again the next time it is due (the condition ended)."""
        with self._lock:
            self._last.pop(key, None)
