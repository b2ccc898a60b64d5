"""Write a claimed batch exactly once, even when the database refuses part of it.

A batch refused for its data (``db_errors.is_data_error``) is halved, and halved again,
until the record at fault is alone: every other view is written, and that record is
counted as ``invalid`` and set aside (the ``aside:`` keys) for
``pageviews_flush --retry-aside``. Any other failure (an outage) is raised: the claim
stays, and is retried whole once the database is back.

Exactly once across crashes and replays: the split is recorded in the database before
any part is written (``ledger.start_split``), so the batch is never written whole after
that; and a part is named by its place among the batch's records in a stable order
(count fields sorted, then raw events as claimed), so whoever carries on (cleanup, a
replay) writes the same parts under the same ids, each once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from django_pageviews import stats
from django_pageviews.db_errors import is_data_error
from django_pageviews.events import PageViewEvent, current_day
from django_pageviews.ledger import (
    INVALID,
    SPLIT,
    WRITTEN,
    batch_states,
    part_id,
    record_invalid,
    start_split,
)
from django_pageviews.storage import Contents, write_once
from django_pageviews.wire import (
    PendingFields,
    RawEvent,
    decode_event,
    parse_count_field,
    parse_skipped_field,
)

from .aside import park
from .buffer import Claim

logger = logging.getLogger(__name__)

SET_ASIDE = "set_aside"  # process counter: records set aside

# A count field and its views, or a raw event and None.
Record = tuple[RawEvent, int | None]


class StillRefused(Exception):
    """A set-aside record the database still refuses (it stays set aside)."""


def store(client: object, batch: Claim, state: str | None = None, replaying: bool = False) -> int:
    """Write ``batch`` once, whole or in parts; the views written. ``state`` is what the
    ledger already says of its id, if the caller asked. ``replaying``: ``batch`` was set
    aside, and a single record still refused raises StillRefused."""
    records: list[Record] = [*sorted(batch.counts.items()), *((r, None) for r in batch.raw_events)]
    writer = _Writer(client, batch, records, replaying)
    return writer.root(state)


class _Writer:
    def __init__(
        self,
        client: object,
        batch: Claim,
        records: list[Record],
        replaying: bool,
    ):
        self.client = client
        self.mark = batch.mark  # the claim's (epoch, sequence number), kept with each part
        self.keys = batch.keys  # its shard's: a part set aside stays in that shard
        self.root_id = batch.batch_id
        self.records = records
        self.replaying = replaying

    def root(self, state: str | None) -> int:
        if state == SPLIT:
            return self._halves(0, len(self.records))
        if state == WRITTEN:
            return 0
        try:
            written = _write(self._claim(self.root_id, 0, len(self.records)), self.replaying)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            _refused(self.root_id, len(self.records), exc)
            if self.replaying and len(self.records) == 1:
                raise StillRefused(self.root_id) from exc
            return self._halves(0, len(self.records)) if start_split(self.root_id) else 0
        if written is None:  # written before, whole; or split, and perhaps not finished
            if batch_states([self.root_id]).get(self.root_id) == SPLIT:
                return self._halves(0, len(self.records))
            return 0
        return written

    def _halves(self, lo: int, hi: int) -> int:
        mid = lo + (hi - lo) // 2
        parts = [(lo, hi)] if hi - lo == 1 else [(lo, mid), (mid, hi)]
        ids = [self._part_id(a, b) for a, b in parts]
        states = batch_states(ids)
        return sum(self._part(a, b, states.get(i)) for (a, b), i in zip(parts, ids, strict=True))

    def _part(self, lo: int, hi: int, state: str | None) -> int:
        part_id = self._part_id(lo, hi)
        part = self._claim(part_id, lo, hi)
        if state == SPLIT:
            return self._halves(lo, hi)
        if state == WRITTEN:
            return 0
        if state == INVALID:  # counted as invalid before a crash: make sure it is parked
            park(self.client, part)
            return 0
        try:
            return _write(part, replacing_invalid=True) or 0
        except Exception as exc:
            if not is_data_error(exc):
                raise
            _refused(part_id, hi - lo, exc)
            if hi - lo == 1:
                return self._set_aside(part)
            return self._halves(lo, hi) if start_split(part_id) else 0

    def _set_aside(self, record: Claim) -> int:
        views = sum(n for f, n in record.counts.items() if _is_view_count(f))
        if not record_invalid(record.batch_id, views):
            return 0  # written meanwhile, by a replay
        park(self.client, record)  # after the count: a replay always finds it counted
        stats.incr(stats.SKIP_INVALID, views)
        stats.incr(SET_ASIDE)
        logger.error(
            "Page-view record %s is refused by the database: set aside (%d views counted "
            "as invalid) until `manage.py pageviews_flush --retry-aside` writes it: %s",
            record.batch_id,
            views,
            describe(record.counts, record.raw_events),
        )
        return 0

    def _part_id(self, lo: int, hi: int) -> str:
        return part_id(self.root_id, lo, hi)

    def _claim(self, batch_id: str, lo: int, hi: int) -> Claim:
        chosen = self.records[lo:hi]
        counts = {f: n for f, n in chosen if n is not None and isinstance(f, str)}
        return Claim(batch_id, counts, [r for r, n in chosen if n is None], self.mark, self.keys)


def _write(batch: Claim, replacing_invalid: bool) -> int | None:
    """Write one batch (or part) in one transaction; None if its id was written before.
    Records that cannot be read are counted as invalid in the same transaction."""
    read = contents(batch)
    return write_once(
        batch.batch_id,
        read.events,
        read.totals,
        read.skipped,
        replacing_invalid=replacing_invalid,
        claim_mark=batch.mark,
        visitors=read.visitors,
    )


def contents(batch: Claim) -> Contents:
    """What ``batch`` holds, read; a record that cannot be read is counted as invalid
    (with the batch: the caller writes it in the batch's transaction)."""
    read = PendingFields()
    skipped = read.skipped
    for field, n in batch.counts.items():
        try:
            read.add(field, n)
        except (ValueError, TypeError):
            skipped[(current_day(), stats.SKIP_INVALID)] += _unreadable(describe([field]), n)
    events: list[PageViewEvent] = []
    for raw in batch.raw_events:
        if not isinstance(raw, str):  # decoded already (redis/packing.py): most of them
            events.append(raw)
            continue
        try:
            events.append(decode_event(raw))
        except (ValueError, TypeError):
            skipped[(current_day(), stats.SKIP_INVALID)] += _unreadable(describe((), [raw]))
    return Contents(batch.batch_id, events, read.totals, skipped, batch.mark, read.visitors)


def _is_view_count(field: str) -> bool:
    try:
        return parse_skipped_field(field) is None and bool(parse_count_field(field))
    except (ValueError, TypeError):
        return False


def _unreadable(description: str, views: int = 1) -> int:
    # A record that cannot be read is skipped (counted with its batch, logged), never
    # retried forever.
    stats.incr(stats.SKIP_INVALID, views)
    logger.error("Skipping an unreadable page-view record: %s", description)
    return views


def _refused(batch_id: str, records: int, exc: Exception) -> None:
    stats.incr(stats.FLUSH_ERROR)
    logger.warning(
        "The database refused page-view batch %s (%d records) for its data (%s: %.200s); "
        "writing it in parts.",
        batch_id,
        records,
        type(exc).__name__,
        exc,
    )


def describe(counts: Iterable[str] = (), raw_events: Iterable[RawEvent] = ()) -> str:
    """What a log may say of records: a count field as it is (a day and a page), a raw
    event by its id and URL only, never its address or user agent."""
    described = [repr(field[:300]) for field in counts]
    for raw in raw_events:
        if not isinstance(raw, str):
            described.append(f"event {raw.event_id[:64]!r} of {raw.target.url[:300]!r}")
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, list) and len(data) > 2:
            described.append(f"event {str(data[0])[:64]!r} of {str(data[2])[:300]!r}")
        else:
            described.append(f"a raw event of {len(raw)} characters")
    return "; ".join(described)
