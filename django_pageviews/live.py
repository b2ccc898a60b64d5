"""Views not yet in the database, read consistently with a database read.

Two sources: the in-process buffer (its commit lock is held across the database read) and,
in async mode, Redis. For Redis, a batch can be committed to the database while it is
still in the live totals (between commit and acknowledgement); the snapshot lists such
open claims with their counts, and the claims committed by the time of the database read
are subtracted. The claim sequence number is read again afterwards: if a new claim
appeared meanwhile, the read is repeated, so a view is never counted twice or missed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from . import stats
from .buffer import buffer
from .conf import conf
from .events import Target
from .models import ProcessedBatch
from .wire import dimension_totals

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 3


def read(db_read: Callable[[], T], dims: list[str]) -> tuple[T, Counter[Target], Counter[str]]:
    """(``db_read()``, targets pending in this process, pending Redis totals of ``dims``)."""
    with buffer.consistent_read() as local:
        if not conf.ASYNC_PROCESSING:
            return db_read(), local, Counter()
        try:
            db, redis_pending = _read_with_redis(db_read, dims)
        except Exception:
            # A page must still render: count what the database has, and say so.
            stats.incr(stats.READ_ERROR)
            logger.warning("Live page-view counts unavailable from Redis.", exc_info=True)
            return db_read(), local, Counter()
        return db, local, redis_pending


def _read_with_redis(db_read: Callable[[], T], dims: list[str]) -> tuple[T, Counter[str]]:
    from .redis_buffer import claim_sequence, snapshot
    from .redis_client import get_client

    client = get_client()
    for _ in range(ATTEMPTS):
        snap = snapshot(client, dims)
        before = _committed(snap.claims)
        db = db_read()
        after = _committed(snap.claims)
        if before == after and claim_sequence(client) == snap.seq:
            break
    pending: Counter[str] = Counter(snap.values)
    wanted = set(dims)
    for batch_id in after:
        for dim, n in dimension_totals(snap.claims[batch_id].items()).items():
            if dim in wanted:
                pending[dim] -= n
    return db, pending


def _committed(claims: dict[str, dict[str, int]]) -> set[str]:
    if not claims:
        return set()
    return set(
        ProcessedBatch.objects.filter(batch_id__in=list(claims)).values_list("batch_id", flat=True)
    )
