"""The daily salt of visitor hashes: random, shared by every process, kept two days.

Privacy-first analytics (Plausible, Fathom) hash the visitor with a random salt that
changes every day and is then deleted: once it is gone, that day's hashes can no longer be
recomputed from a guessed address, by anyone. A salt derived from SECRET_KEY could always
be recomputed. The salt lives in the database, the one store every deployment has; each
process reads a day's salt once. Tomorrow's salt is made a day early, so that a process
never waits for it at midnight, and yesterday's is kept for views written late.

Loading happens off the request path (the batchers and the writer call ``prepare``); a
process that cannot reach the database hashes with a salt of its own for a minute and
tries again, so that counting never stops for it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import date, timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, router, transaction

from . import stats
from .events import current_day

logger = logging.getLogger(__name__)

SALT_BYTES = 32
RETRY_AFTER = 60.0  # seconds a process-local salt is used before the database is tried again

# day -> (salt, monotonic time after which to load it again; inf once it came from the DB)
_memo: dict[date, tuple[bytes, float]] = {}
_lock = threading.Lock()


def salt(day: date) -> bytes:
    """The salt of ``day``: from memory, else loaded (a database query)."""
    entry = _memo.get(day)
    if entry is None or entry[1] <= time.monotonic():
        return _load(day)
    return entry[0]


def ready() -> bool:
    """True when the salts of yesterday, today and tomorrow are in memory."""
    now = time.monotonic()
    return all(_memo.get(d, (b"", 0.0))[1] > now for d in _window())


def prepare(close_connection: bool = False) -> None:
    """Load the salts a batch can need (yesterday's, today's, tomorrow's) into memory.
    ``close_connection``: the caller is a thread that otherwise never uses the database,
    so the connection this opened is closed rather than left idle for a day."""
    try:
        for day in _window():
            salt(day)
    finally:
        if close_connection:
            connections.close_all()


def _window() -> tuple[date, date, date]:
    today = current_day()
    return today - timedelta(days=1), today, today + timedelta(days=1)


def _load(day: date) -> bytes:
    with _lock:
        entry = _memo.get(day)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        try:
            value, expires = _fetch_or_create(day), float("inf")
        except Exception:
            stats.incr(stats.SALT_ERROR)
            logger.warning(
                "Could not read the visitor-hash salt of %s from the database; using a "
                "salt of this process for a minute.",
                day,
                exc_info=True,
            )
            value, expires = secrets.token_bytes(SALT_BYTES), time.monotonic() + RETRY_AFTER
        for old in [d for d in _memo if d < day - timedelta(days=2)]:
            del _memo[old]
        _memo[day] = (value, expires)
        return value


def _fetch_or_create(day: date) -> bytes:
    from .models import VisitorSalt

    using = router.db_for_write(VisitorSalt) or DEFAULT_DB_ALIAS
    salts = VisitorSalt.objects.using(using)
    row = salts.filter(day=day).first()
    if row is None:
        try:
            with transaction.atomic(using=using):
                row = salts.create(day=day, salt=secrets.token_hex(SALT_BYTES))
        except IntegrityError:  # another process made it first
            row = salts.get(day=day)
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
    with _lock:
        _memo.clear()
