"""Write a batch of events to the database in one transaction, exactly once.

The batch id is inserted first, in the same transaction as the rows and the daily totals:
a batch replayed after a crash or a lost commit acknowledgement hits the unique batch id
and changes nothing. Nothing a view names can fail its batch: an object that cannot be
found (a field the model lacks, a value the field cannot hold) is counted by URL and view
name, and a raw event already stored (a shipment delivered twice) is skipped, with the
view it carries taken off the daily totals.

Several batches can share one transaction (``write_group``, the drain's backlog), each
under its own id: one commit, one upsert of the daily totals for them all. Raw rows go in
bulk (raw_rows.py); which of them are stored already is asked only when the event id's
unique index refuses a transaction (``_write``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from . import stats
from . import totals as key_totals
from . import visitors as daily_visitors
from .conf import conf
from .events import PageViewEvent, Target, local_day
from .ledger import INVALID_SUFFIX, forget_invalid
from .models import TARGET_HASH_LENGTH, PageViewDaily, ProcessedBatch
from .privacy import with_visitor_hashes
from .raw_rows import insert_raw_rows, stored_event_ids
from .resolve import Resolved
from .resolve import resolve_targets as resolve_targets  # reports.py reads it here
from .salts import forget_old_salts
from .upsert import upsert_rollups, upsert_skipped
from .url_cap import cap_new_urls

logger = logging.getLogger(__name__)

DUPLICATE = "duplicate_event"  # process counter: raw events already stored, skipped
DayTarget = tuple[date, Target]


class Contents(NamedTuple):
    """What one batch holds, read: its raw events, daily totals (None: counted from the
    events) and requests not counted, by day and reason."""

    batch_id: str
    events: Sequence[PageViewEvent]
    totals: Mapping[DayTarget, int] | None = None
    skipped: Mapping[tuple[date, str], int] | None = None
    claim_mark: tuple[str, int] | None = None  # the Redis claim's (epoch, sequence number)
    # Visitors seen, by (day, hash), that no event here carries (counts-only shipments).
    visitors: Collection[tuple[date, str]] = frozenset()


@dataclass
class _Prepared:
    """A batch as its transaction writes it: duplicates taken out, counts netted."""

    contents: Contents
    events: list[PageViewEvent]
    totals: Counter[DayTarget]  # net counts: positive ones added, negative ones withdrawn
    views: int  # what the batch adds, net (kept with its id)
    duplicates: int  # raw events skipped: stored already, or twice in the batch(es)


def write_batch(
    batch_id: str,
    events: Sequence[PageViewEvent],
    totals: Mapping[DayTarget, int] | None = None,
    skipped: Mapping[tuple[date, str], int] | None = None,
    visitors: Collection[tuple[date, str]] = frozenset(),
    claim_mark: tuple[str, int] | None = None,
) -> int:
    """Store a batch under ``batch_id``: raw rows for ``events``, daily totals (``totals``,
    or counted from ``events``), requests not counted (``skipped``, by day and reason) and
    the day's visitors (those of ``events`` and ``visitors``, by day and hash). The number
    of views written, 0 for a replay. ``claim_mark``: the Redis claim's (epoch, sequence
    number), kept with the batch id (redis/restore.py).
    """
    return (
        write_once(batch_id, events, totals, skipped, claim_mark=claim_mark, visitors=visitors) or 0
    )


def write_once(
    batch_id: str,
    events: Sequence[PageViewEvent],
    totals: Mapping[DayTarget, int] | None = None,
    skipped: Mapping[tuple[date, str], int] | None = None,
    *,
    replacing_invalid: bool = False,
    claim_mark: tuple[str, int] | None = None,
    visitors: Collection[tuple[date, str]] = frozenset(),
) -> int | None:
    """``write_batch``, but None (nothing changed) when ``batch_id`` was written before.
    With ``replacing_invalid`` (a record set aside, replayed), the views counted as invalid
    under this id stop being invalid in the same transaction."""
    using = database()
    try:
        (written,) = _write(
            [Contents(batch_id, events, totals, skipped, claim_mark, visitors)],
            using,
            replacing_invalid,
        )
    except IntegrityError:
        if ProcessedBatch.objects.using(using).filter(batch_id=batch_id).exists():
            return None
        raise
    return written


def write_group(batches: Sequence[Contents]) -> list[int]:
    """Write several batches in ONE transaction, each under its own id; the views each
    added. All or none: any failure (a batch id written before, a record the database
    refuses, an outage) raises, and nothing is written; the caller then writes them one
    by one (``write_once``), which tells those cases apart. One transaction, one commit
    (and one fsync) for many claims: a drain of small claims (PAGEVIEW_BATCH_SIZE 100)
    would otherwise spend most of its time committing."""
    return _write(batches, database(), replacing_invalid=False)


def database() -> str:
    return router.db_for_write(PageViewDaily) or DEFAULT_DB_ALIAS


def _write(batches: Sequence[Contents], using: str, replacing_invalid: bool) -> list[int]:
    """Write ``batches`` in one transaction, first without asking which of their raw events
    are stored already: almost never any (a shipment delivered twice), and the event id's
    unique index says so anyway, by refusing the transaction. Refused (that, or any other
    integrity error), it is written again as it always was, duplicates looked up first:
    what commits is the same either way, since the first try commits only when no event
    of the batches was stored. The lookup cost a query per transaction and an index probe
    per view (about 2 us of the database server's CPU, 1.5 us of the drain's, per view)."""
    # Hashes need the day's salt, which a thread of salts.py may have to read or create:
    # before the transaction, since on SQLite that thread's INSERT would wait for this
    # transaction's write lock until the busy timeout.
    hashed = [b._replace(events=with_visitor_hashes(b.events)) for b in batches]
    visitors = _visitors(hashed)
    if conf.STORE_RAW and any(b.events for b in hashed):
        try:
            return _write_checked(hashed, set(), visitors, using, replacing_invalid)
        except IntegrityError:
            pass  # a stored event (or a batch id written before): looked up, below
    stored = _stored(hashed, using)
    return _write_checked(hashed, stored, visitors, using, replacing_invalid)


def _write_checked(
    batches: Sequence[Contents],
    stored: set[str],
    visitors: set[tuple[date, str]],
    using: str,
    replacing_invalid: bool,
) -> list[int]:
    """``_write`` with ``stored``: the event ids of the batches stored already (skipped).
    Visitor hashes and ``visitors`` are worked out already: lookups are made before the
    transaction."""
    prepared = [_prepare(b, stored) for b in batches]
    net: Counter[DayTarget] = Counter()
    for p in prepared:
        net.update(p.totals)
    withdrawn = Counter({k: -n for k, n in net.items() if n < 0})
    totals, overflow = cap_new_urls({k: n for k, n in net.items() if n > 0}, using)
    skipped: Counter[tuple[date, str]] = Counter(overflow)
    for b in batches:
        skipped.update(b.skipped or {})
    events = [e for p in prepared for e in p.events]
    targets = {t for _, t in totals} | {e.target for e in events} | {t for _, t in withdrawn}
    resolved = resolve_targets(targets)
    with transaction.atomic(using=using):
        ProcessedBatch.objects.using(using).bulk_create(
            [
                ProcessedBatch(
                    batch_id=p.contents.batch_id,
                    views=p.views,
                    redis_epoch=(p.contents.claim_mark or ("", None))[0],
                    redis_seq=(p.contents.claim_mark or ("", None))[1],
                )
                for p in prepared
            ]
        )
        if replacing_invalid:
            for b in batches:
                forget_invalid(b.batch_id, using)
        if conf.STORE_RAW:
            insert_raw_rows(events, resolved, using)
        rollups = _rollup_rows(totals, resolved)
        upsert_rollups(rollups, using)
        key_totals.add(rollups, using)  # the same views by key (reads, totals.py)
        _withdraw(withdrawn, resolved, using)
        daily_visitors.record(visitors, using)
        upsert_skipped([(day, reason, n) for (day, reason), n in skipped.items() if n > 0], using)
    if duplicates := sum(p.duplicates for p in prepared):  # committed: said once
        stats.incr(DUPLICATE, duplicates)
        logger.warning("Skipped %d page-view events already stored (delivered twice).", duplicates)
    return [p.views for p in prepared]


def _visitors(batches: Sequence[Contents]) -> set[tuple[date, str]]:
    """The visitors the batches saw: those of their events (every event, also one stored
    before: its visitor is then stored already, and skipped), and those they name."""
    found = daily_visitors.of_events(e for b in batches for e in b.events)
    for b in batches:
        found.update(b.visitors)
    return found


def _stored(batches: Sequence[Contents], using: str) -> set[str]:
    """The event ids of ``batches`` stored as raw rows already: one query for them all."""
    if not conf.STORE_RAW:
        return set()
    return stored_event_ids((e.event_id for b in batches for e in b.events), using)


def _prepare(batch: Contents, stored: set[str]) -> _Prepared:
    """Take out the events stored already (or earlier in the group, or twice in the
    batch; ``stored`` grows with the events kept), and net the counts: each copy of an
    event brought its own count, taken off here or, for a count this batch does not hold,
    from the daily row already written."""
    events, surplus = _new_events(batch.events, stored)
    if batch.totals is None:
        net = Counter((local_day(e.timestamp), e.target) for e in events)
    else:
        net = Counter(batch.totals)
        net.subtract(surplus)
    added = sum(n for n in net.values() if n > 0)
    withdrawn = -sum(n for n in net.values() if n < 0)
    duplicates = sum(surplus.values())
    return _Prepared(batch, events, net, max(added - withdrawn, 0), duplicates)


def _rollup_rows(
    totals: Mapping[DayTarget, int], resolved: dict[Target, Resolved]
) -> list[tuple[date, str, int | None, str, str, str, int]]:
    rows: Counter[tuple[date, str, int | None, str, str, str]] = Counter()
    for (day, target), views in totals.items():
        content_type_id, object_id = resolved[target]
        url, view_name = target.url, target.view_name
        key = target_hash(content_type_id, object_id, url, view_name)
        rows[(day, key, content_type_id, object_id, url, view_name)] += views
    return [(*row, n) for row, n in rows.items()]


def _new_events(
    events: Sequence[PageViewEvent], stored: set[str]
) -> tuple[list[PageViewEvent], Counter[DayTarget]]:
    """The events not in ``stored`` (nor twice in the batch), and the views the others
    hold, by day and target."""
    if not conf.STORE_RAW or not events:
        return list(events), Counter()
    kept: list[PageViewEvent] = []
    surplus: Counter[DayTarget] = Counter()
    for e in events:
        if e.event_id in stored:
            surplus[(local_day(e.timestamp), e.target)] += 1
        else:
            kept.append(e)
            stored.add(e.event_id)
    return kept, surplus


def _withdraw(withdrawn: Counter[DayTarget], resolved: dict[Target, Resolved], using: str) -> None:
    # Rare (a duplicate whose count was written by another batch): one query per row.
    for (day, target), n in sorted(withdrawn.items()):
        content_type_id, object_id = resolved[target]
        key = target_hash(content_type_id, object_id, target.url, target.view_name)
        # What the row holds at most (locked; 0 if none), also off its keys (totals.py):
        # views - n would leave an unsigned column's range on MySQL before GREATEST.
        if taken := key_totals.withdraw(day, key, n, using):
            PageViewDaily.objects.using(using).filter(day=day, target_hash=key).update(
                views=F("views") - taken
            )


def target_hash(content_type_id: int | None, object_id: str, url: str, view_name: str) -> str:
    key = f"{content_type_id or ''}\0{object_id}\0{url}\0{view_name}".encode()
    return hashlib.blake2b(key, digest_size=TARGET_HASH_LENGTH // 2).hexdigest()


def trim_old_rows() -> int:
    """Delete batch ids older than PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS (the number
    returned), the visitor rows of days as old (their daily counts stay), and
    visitor-hash salts older than yesterday."""
    forget_old_salts()
    daily_visitors.forget_old()
    cutoff = timezone.now() - dt.timedelta(days=conf.PROCESSED_BATCH_RETENTION_DAYS)
    # A record counted as invalid keeps its mark until it is replayed (see ledger.py).
    old = ProcessedBatch.objects.filter(created_at__lt=cutoff)
    deleted, _ = old.exclude(batch_id__endswith=INVALID_SUFFIX).delete()
    return deleted
