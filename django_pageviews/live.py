"""Views not yet in the database, read consistently with a database read.

Two sources: the in-process buffer (its commit lock is held across the database read) and,
in async mode, Redis. For Redis, a batch can be committed to the database while it is
still claimed in Redis (between commit and acknowledgement); the snapshot lists the open
claims with their counts, and which of them are committed is read just before and just
after the database read. The claim sequence number is read again afterwards: if anything
changed meanwhile, the read is repeated, so a view is never counted twice or missed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from . import stats
from .buffer import buffer
from .conf import conf
from .events import PageViewEvent, Target, local_day
from .models import ProcessedBatch
from .wire import dimension_totals, parse_count_field

if TYPE_CHECKING:
    from .redis_buffer import Snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 3

DayTarget = tuple[date, Target]


def read(db_read: Callable[[], T], dims: list[str]) -> tuple[T, Counter[Target], Counter[str]]:
    """(``db_read()``, targets pending in this process, pending Redis totals of ``dims``)."""
    with buffer.consistent_read() as (local, _):
        if not conf.ASYNC_PROCESSING:
            return db_read(), local, Counter()
        with _unshipped() as unshipped:
            local.update(e.target for e in unshipped)
            try:
                db, remote = _read_dims(db_read, dims)
            except Exception:
                return _redis_unavailable(db_read), local, Counter()
            return db, local, remote


def read_all(
    db_read: Callable[[Counter[DayTarget]], T],
) -> tuple[T, Counter[DayTarget]]:
    """(``db_read(candidates)``, every pending view by day and target, from this process
    and Redis). ``candidates`` holds every (day, target) that may be pending, so that the
    database read can fetch their totals too."""
    with buffer.consistent_read(with_events=True) as (_, events):
        if not conf.ASYNC_PROCESSING:
            local = _by_day(events)
            return db_read(local), local
        with _unshipped() as unshipped:
            local = _by_day(events + unshipped)
            try:
                db, remote = _read_fields(db_read, local)
            except Exception:
                return _redis_unavailable(lambda: db_read(local)), local
            return db, local + remote


def _by_day(events: list[PageViewEvent]) -> Counter[DayTarget]:
    return Counter((local_day(e.timestamp), e.target) for e in events)


def _unshipped() -> AbstractContextManager[list[PageViewEvent]]:
    """Views this process's thread batcher has not shipped yet, with its shipping held
    off until the read is done: a view is never seen both unshipped and in Redis."""
    from .sync_batcher import batcher

    return batcher.holding()


def _redis_unavailable(db_read: Callable[[], T]) -> T:
    # A page must still render: count what the database has, and say so.
    stats.incr(stats.READ_ERROR)
    logger.warning("Live page-view counts unavailable from Redis.", exc_info=True)
    return db_read()


def _read_dims(db_read: Callable[[], T], dims: list[str]) -> tuple[T, Counter[str]]:
    from .redis_buffer import snapshot

    snap, db, committed = _consistently(lambda client: snapshot(client, dims), lambda _: db_read())
    # The live totals still include claims already committed: take those out.
    pending: Counter[str] = Counter(snap.values)
    wanted = set(dims)
    for batch_id in committed:
        for dim, n in dimension_totals(snap.claims[batch_id].items()).items():
            if dim in wanted:
                pending[dim] -= n
    return db, pending


def _read_fields(
    db_read: Callable[[Counter[DayTarget]], T], local: Counter[DayTarget]
) -> tuple[T, Counter[DayTarget]]:
    from .redis_buffer import snapshot_all

    def candidates(snap: Snapshot) -> Counter[DayTarget]:
        return local + _parse({**snap.values, **_merged(snap.claims.values())})

    snap, db, committed = _consistently(snapshot_all, lambda snap: db_read(candidates(snap)))
    open_claims = [chunk for batch_id, chunk in snap.claims.items() if batch_id not in committed]
    fields: Counter[str] = Counter(snap.values)
    fields.update(_merged(open_claims))
    return db, _parse(fields)


def _merged(chunks: Iterable[dict[str, int]]) -> Counter[str]:
    merged: Counter[str] = Counter()
    for chunk in chunks:
        merged.update(chunk)
    return merged


def _parse(fields: dict[str, int]) -> Counter[DayTarget]:
    pending: Counter[DayTarget] = Counter()
    for field, n in fields.items():
        try:
            pending[parse_count_field(field)] += n
        except (ValueError, TypeError):
            continue  # not a count field of ours; the drain sets it aside
    return pending


def _consistently(
    take: Callable[[Any], Snapshot], db_read: Callable[[Snapshot], T]
) -> tuple[Snapshot, T, set[str]]:
    """A Redis snapshot and a database read that agree on which claims are committed."""
    from .redis_buffer import claim_sequence
    from .redis_client import get_client

    client = get_client()
    for _ in range(ATTEMPTS):
        snap = take(client)
        before = _committed(snap.claims)
        db = db_read(snap)
        after = _committed(snap.claims)
        if before == after and claim_sequence(client) == snap.seq:
            break
    return snap, db, after


def _committed(claims: dict[str, dict[str, int]]) -> set[str]:
    if not claims:
        return set()
    ids = ProcessedBatch.objects.filter(batch_id__in=list(claims))
    return set(ids.values_list("batch_id", flat=True))
