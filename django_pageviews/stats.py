"""Cheap process-local counters: every view not counted and every error has a number.

``collections.Counter`` updates are not atomic across threads, so a lock guards them;
it is held for one dictionary update.
"""

from __future__ import annotations

import threading
from collections import Counter

# Reasons a request was not counted, and error kinds.
SKIP_METHOD = "method"
SKIP_STATUS = "status"
SKIP_EXCLUDED = "excluded"
SKIP_BOT = "bot"
SKIP_PREFETCH = "prefetch"
SKIP_DNT = "dnt"
SKIP_GPC = "gpc"
SKIP_THROTTLED = "throttled"
DROP_OVERFLOW = "overflow"
TRACKING_ERROR = "tracking_error"
FLUSH_ERROR = "flush_error"
TRACKED = "tracked"
WRITTEN = "written"
SHIPPED = "shipped"
REDIS_ERROR = "redis_error"
EARLY_FLUSH_ERROR = "early_flush_error"
READ_ERROR = "read_error"
POISON = "poison"

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def incr(name: str, amount: int = 1) -> None:
    with _lock:
        _counts[name] += amount


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)
