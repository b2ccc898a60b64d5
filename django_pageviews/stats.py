"""Cheap process-local counters: every view not counted and every error has a number.

The reasons a view was not counted are also kept as "unsaved" deltas, which the next
batch takes and writes to ``SkippedDaily`` with its views (through Redis in async mode),
so that the totals cover every process and survive restarts.

``collections.Counter`` updates are not atomic across threads, so a lock guards them;
it is held for one dictionary update.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date

from . import forks
from .events import current_day

# Reasons a request was not counted as a view, written per day to SkippedDaily.
SKIP_EXCLUDED = "excluded"  # an excluded path, admin page, AJAX request or address
SKIP_BOT = "bot"  # a crawler, a client without a User-Agent, curl, wget, python-requests
SKIP_PREFETCH = "prefetch"  # a browser's prefetch or prerender
SKIP_DNT = "dnt"  # DNT: 1, with PAGEVIEW_RESPECT_DNT
SKIP_GPC = "gpc"  # Sec-GPC: 1, with PAGEVIEW_RESPECT_DNT
SKIP_THROTTLED = "throttled"  # the same visitor and URL within PAGEVIEW_THROTTLE_SECONDS
SKIP_INVALID = "invalid"  # a record in Redis that could not be read
SKIP_ERROR = "error"  # tracking raised: a bug or an input nobody foresaw, logged
DROPPED = "dropped"  # a view lost: buffer full, or Redis down with the "drop" fallback
URL_OVERFLOW = "overflow"  # counted under the overflow URL, not its own (url_cap.py)
BEACON_REFUSED = "beacon_refused"  # a beacon with a bad token, method, size or page
SKIP_REASONS = frozenset(
    (
        SKIP_EXCLUDED,
        SKIP_BOT,
        SKIP_PREFETCH,
        SKIP_DNT,
        SKIP_GPC,
        SKIP_THROTTLED,
        SKIP_INVALID,
        SKIP_ERROR,
        DROPPED,
        URL_OVERFLOW,
        BEACON_REFUSED,
    )
)
# Counted by the incr() of the moment; the other two are counted by the batch they are
# found in, in its own transaction.
_SAVED_LATER = SKIP_REASONS - {SKIP_INVALID, URL_OVERFLOW}
# Not views at all (process counters only).
SKIP_METHOD = "method"  # not a GET
SKIP_STATUS = "status"  # not a 200 response
BEACON_PAGE = "beacon_page"  # a page left to its beacon (marks.py): counted there
# Pipeline events and errors (process counters only).
TRACKED = "tracked"  # requests counted as views by this process
WRITTEN = "written"  # views this process wrote to the database
SHIPPED = "shipped"  # views this process shipped to Redis
FLUSH_ERROR = "flush_error"  # a write to the database failed (the batch is kept)
REDIS_ERROR = "redis_error"  # a call to Redis failed
EARLY_FLUSH_ERROR = "early_flush_error"  # an early flush task could not be sent
READ_ERROR = "read_error"  # a live read could not read Redis (database total used)
THROTTLE_ERROR = "throttle_error"  # the throttle's store failed (the view counted)
SALT_ERROR = "salt_error"  # the daily salt could not be read or stored
METRICS_ERROR = "metrics_error"  # a scrape or status could not read Redis or the database

# Who writes unsaved skip counts when no view comes to carry them (the in-process writer),
# told once each time they go from none to some.
on_first_unsaved: Callable[[], None] | None = None
# Told of every count (name, amount) when set: metrics/multiprocess.py copies them to the
# files in which prometheus_client's multiprocess mode sums the processes of a host.
on_incr: Callable[[str, int], None] | None = None

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_unsaved: Counter[tuple[date, str]] = Counter()  # (day it happened, reason) -> requests
_unsaved_since: float | None = None  # monotonic time of the oldest unsaved delta


def incr(name: str, amount: int = 1) -> None:
    global _unsaved_since
    forks.check()  # a count made in a child must not be reset with the parent's later
    first = False
    with _lock:
        _counts[name] += amount
        if name in _SAVED_LATER:
            _unsaved[(current_day(), name)] += amount
            if _unsaved_since is None:
                _unsaved_since, first = time.monotonic(), True
    if on_incr is not None:  # outside the lock: it takes prometheus_client's
        on_incr(name, amount)
    if first and on_first_unsaved is not None:  # outside the lock: it takes others
        on_first_unsaved()


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def take_unsaved() -> Counter[tuple[date, str]]:
    """The skip counts no batch has taken yet, by day and reason; the caller now owns them
    (and gives them back with ``give_back`` if it cannot save them)."""
    global _unsaved, _unsaved_since
    with _lock:
        taken, _unsaved, _unsaved_since = _unsaved, Counter(), None
        return taken


def give_back(counts: Counter[tuple[date, str]]) -> None:
    global _unsaved_since
    if not counts:
        return
    with _lock:
        _unsaved.update(counts)
        if _unsaved_since is None:
            _unsaved_since = time.monotonic()


def unsaved_age() -> float | None:
    """Seconds since the oldest unsaved skip count, or None when there is none."""
    since = _unsaved_since
    return None if since is None else time.monotonic() - since


@forks.after_fork
def _forget_in_child() -> None:
    # A forked child starts with none: its parent saves the counts it had.
    global _lock, _unsaved, _unsaved_since
    _lock, _unsaved, _unsaved_since = threading.Lock(), Counter(), None
