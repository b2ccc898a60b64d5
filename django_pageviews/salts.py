"""The daily salt of visitor hashes: random, shared by every process, kept two days.

Privacy-first analytics (Plausible, Fathom) hash the visitor with a random salt that
changes every day and is then deleted: once it is gone, that day's hashes can no longer be
recomputed from a guessed address, by anyone. A salt derived from SECRET_KEY could always
be recomputed. The salt lives in the database, the one store every deployment has; each
process reads a day's salt once. The batchers load tomorrow's a day early, so that they
never wait for it at midnight; yesterday's is kept for views written late.

Salts are read and created only in a thread of this module's own (never on the request
path, never on an event loop, never inside a caller's transaction). A process that cannot
reach the database hashes with a salt of its own (one per day) and tries the database
again a minute later, so that counting never waits for it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, router, transaction

from . import forks, stats
from .events import current_day

logger = logging.getLogger(__name__)

SALT_BYTES = 32
RETRY_AFTER = 60.0  # seconds before the database is tried again after a failure


class _Salts:
    """day -> salt, and when to ask the database again (never, once it answered)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.memo: dict[date, tuple[bytes, float]] = {}
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pageviews-salts")
        self.refreshing: Future[None] | None = None


_state = _Salts()


@forks.after_fork
def _forget_in_child() -> None:
    # The loader thread stayed in the parent, and its lock may have been held there.
    global _state
    _state = _Salts()


def _current() -> _Salts:
    forks.check()
    return _state


def salt(day: date) -> bytes:
    """The salt of ``day``: from memory, else loaded by the loader thread (waited for)."""
    entry = _current().memo.get(day)
    if entry is not None:
        return entry[0]
    _submit([day]).result()
    return _current().memo[day][0]


def usable() -> bool:
    """True when yesterday's, today's and tomorrow's salts are in memory (perhaps ones of
    this process, while the database cannot be read)."""
    memo = _current().memo
    return all(day in memo for day in _window())


def refresh() -> Future[None] | None:
    """Have the loader thread fetch the salts a batch can need (yesterday's to tomorrow's)
    when some are missing or due for another try; the load's future, or None when all are
    there. A caller waits for it only when it has no salt to use (``usable()``)."""
    state = _current()
    now = time.monotonic()
    days = [d for d in _window() if state.memo.get(d, (b"", 0.0))[1] <= now]
    if not days:
        return None
    with state.lock:
        refreshing = state.refreshing
    if refreshing is not None and not refreshing.done():
        return refreshing
    refreshing = _submit(days)  # two threads may both ask: the loader runs them in turn
    with state.lock:
        state.refreshing = refreshing
    return refreshing


def _submit(days: list[date]) -> Future[None]:
    try:
        return _current().loader.submit(_load, days)
    except RuntimeError:  # the interpreter is exiting (atexit): no new threads, load here
        done: Future[None] = Future()
        _load(days)
        done.set_result(None)
        return done


def _window() -> tuple[date, date, date]:
    today = current_day()
    return today - timedelta(days=1), today, today + timedelta(days=1)


def _load(days: list[date]) -> None:
    """In the loader thread: one database attempt for all ``days``."""
    state = _current()
    try:
        loaded = {day: (_fetch_or_create(day), float("inf")) for day in days}
    except Exception:
        stats.incr(stats.SALT_ERROR)
        logger.warning(
            "Could not read the visitor-hash salts from the database; this process uses "
            "salts of its own and tries again in a minute.",
            exc_info=True,
        )
        retry_at = time.monotonic() + RETRY_AFTER
        # The same process salt all along for a day, until the database answers.
        loaded = {
            day: (state.memo.get(day, (secrets.token_bytes(SALT_BYTES), 0.0))[0], retry_at)
            for day in days
        }
    finally:
        connections.close_all()  # this thread's own connection; it next runs tomorrow
    with state.lock:
        state.memo.update(loaded)
        oldest = min(days) - timedelta(days=2)
        for old in [d for d in state.memo if d < oldest]:
            del state.memo[old]


def _fetch_or_create(day: date) -> bytes:
    from .models import VisitorSalt

    using = router.db_for_write(VisitorSalt) or DEFAULT_DB_ALIAS
    rows = VisitorSalt.objects.using(using)
    row = rows.filter(day=day).first()
    if row is None:
        try:
            with transaction.atomic(using=using):
                row = rows.create(day=day, salt=secrets.token_hex(SALT_BYTES))
        except IntegrityError:  # another process made it first
            row = rows.get(day=day)
        forget_old_salts()
    return bytes.fromhex(row.salt)


def forget_old_salts() -> int:
    """Delete the salts of days before yesterday: their hashes become unlinkable."""
    from .models import VisitorSalt

    cutoff = current_day() - timedelta(days=1)
    deleted, _ = VisitorSalt.objects.filter(day__lt=cutoff).delete()
    return deleted


def forget_memory() -> None:
    """Drop the salts held in memory (tests)."""
    state = _current()
    with state.lock:
        state.memo.clear()
