"""Write a batch of events to the database in one transaction, exactly once.

The batch id is inserted first, in the same transaction as the rows and the daily totals:
a batch replayed after a crash or a lost commit acknowledgement hits the unique batch id
and changes nothing. Nothing a view names can fail its batch: an object that cannot be
found (a field the model lacks, a value the field cannot hold) is counted by URL and view
name, and a raw event already stored (a shipment delivered twice) is skipped, with the
view it carries taken off the daily totals.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import date

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    connections,
    router,
    transaction,
)
from django.db.models import F
from django.utils import timezone

from . import stats
from . import totals as key_totals
from .conf import conf
from .events import PageViewEvent, Target, local_day
from .ledger import INVALID_SUFFIX, forget_invalid
from .models import TARGET_HASH_LENGTH, PageView, PageViewDaily, ProcessedBatch
from .privacy import with_visitor_hashes
from .resolve import Resolved
from .resolve import resolve_targets as resolve_targets  # reports.py reads it here
from .salts import forget_old_salts
from .upsert import upsert_rollups, upsert_skipped
from .url_cap import cap_new_urls

logger = logging.getLogger(__name__)

RAW_INSERT_BATCH = 500
DUPLICATE = "duplicate_event"  # process counter: raw events already stored, skipped
DayTarget = tuple[date, Target]


def write_batch(
    batch_id: str,
    events: Sequence[PageViewEvent],
    totals: Mapping[DayTarget, int] | None = None,
    skipped: Mapping[tuple[date, str], int] | None = None,
    claim_mark: tuple[str, int] | None = None,
) -> int:
    """Store a batch under ``batch_id``: raw rows for ``events``, daily totals (``totals``,
    or counted from ``events``) and requests not counted (``skipped``, by day and reason).
    The number of views written, 0 for a replay. ``claim_mark``: the Redis claim's (epoch,
    sequence number), kept with the batch id (restore.py).
    """
    return write_once(batch_id, events, totals, skipped, claim_mark=claim_mark) or 0


def write_once(
    batch_id: str,
    events: Sequence[PageViewEvent],
    totals: Mapping[DayTarget, int] | None = None,
    skipped: Mapping[tuple[date, str], int] | None = None,
    *,
    replacing_invalid: bool = False,
    claim_mark: tuple[str, int] | None = None,
) -> int | None:
    """``write_batch``, but None (nothing changed) when ``batch_id`` was written before.
    With ``replacing_invalid`` (a record set aside, replayed), the views counted as invalid
    under this id stop being invalid in the same transaction."""
    using = router.db_for_write(PageViewDaily) or DEFAULT_DB_ALIAS
    events = with_visitor_hashes(events)  # before the transaction: a salt is made at most once
    events, surplus = _new_events(events, using)
    withdrawn: Counter[DayTarget] = Counter()
    if totals is None:
        totals = Counter((local_day(e.timestamp), e.target) for e in events)
    elif surplus:
        # Each copy of an event brought its own count: take the copies' counts off, here
        # or, for a count this batch does not hold, from the daily row already written.
        net = Counter(totals)
        net.subtract(surplus)
        totals = {k: n for k, n in net.items() if n > 0}
        withdrawn = Counter({k: -n for k, n in net.items() if n < 0})
    totals, overflow = cap_new_urls(totals, using)
    skipped = Counter(skipped) + overflow
    targets = {t for _, t in totals} | {e.target for e in events} | {t for _, t in withdrawn}
    resolved = resolve_targets(targets, using)
    views = sum(totals.values())
    try:
        with transaction.atomic(using=using):
            epoch, seq = claim_mark or ("", None)
            ProcessedBatch.objects.using(using).create(
                batch_id=batch_id,
                views=max(views - sum(withdrawn.values()), 0),
                redis_epoch=epoch,
                redis_seq=seq,
            )
            if replacing_invalid:
                forget_invalid(batch_id, using)
            if conf.STORE_RAW and events:
                PageView.objects.using(using).bulk_create(
                    _raw_rows(events, resolved), batch_size=RAW_INSERT_BATCH
                )
            rollups = _rollup_rows(totals, resolved)
            upsert_rollups(rollups, using)
            key_totals.add(rollups, using)  # the same views by key (reads, totals.py)
            _withdraw(withdrawn, resolved, using)
            upsert_skipped([(day, reason, n) for (day, reason), n in skipped.items()], using)
    except IntegrityError:
        if ProcessedBatch.objects.using(using).filter(batch_id=batch_id).exists():
            return None
        raise
    return max(views - sum(withdrawn.values()), 0)


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
    events: Sequence[PageViewEvent], using: str
) -> tuple[list[PageViewEvent], Counter[DayTarget]]:
    """The events not yet stored as raw rows (nor twice in the batch), and the views the
    others hold, by day and target. One indexed query (per 999 events on SQLite)."""
    if not conf.STORE_RAW or not events:
        return list(events), Counter()
    ids: dict[uuid.UUID, str] = {}
    for e in events:
        # An id no row can have is written (and refused) as it is.
        with suppress(ValueError, TypeError, AttributeError):
            ids[uuid.UUID(e.event_id)] = e.event_id
    keys = list(ids)
    stored: set[str] = set()
    per_query = connections[using].features.max_query_params or len(keys) or 1
    for start in range(0, len(keys), per_query):
        chunk = keys[start : start + per_query]
        found = PageView.objects.using(using).filter(event_id__in=chunk)
        stored.update(ids[i] for i in found.values_list("event_id", flat=True))
    kept: list[PageViewEvent] = []
    surplus: Counter[DayTarget] = Counter()
    for e in events:
        if e.event_id in stored:
            surplus[(local_day(e.timestamp), e.target)] += 1
        else:
            kept.append(e)
            stored.add(e.event_id)
    if surplus:
        n = sum(surplus.values())
        stats.incr(DUPLICATE, n)
        logger.warning("Skipped %d page-view events already stored (delivered twice).", n)
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


def _raw_rows(events: Sequence[PageViewEvent], resolved: dict[Target, Resolved]) -> list[PageView]:
    rows = []
    for e in events:
        content_type_id, object_id = resolved[e.target]
        rows.append(
            PageView(
                content_type_id=content_type_id,
                object_id=object_id or None,
                url=e.target.url,
                view_name=e.target.view_name or None,
                ip_address=e.ip_address,
                user_agent=e.user_agent,
                timestamp=_db_datetime(e.timestamp),
                event_id=uuid.UUID(e.event_id),
                visitor_hash=e.visitor_hash,
            )
        )
    return rows


def _aware(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def _db_datetime(timestamp: float) -> dt.datetime:
    aware = _aware(timestamp)
    return aware if settings.USE_TZ else timezone.make_naive(aware)


def trim_old_rows() -> int:
    """Delete batch ids older than PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS (the number
    returned), and visitor-hash salts older than yesterday."""
    forget_old_salts()
    cutoff = timezone.now() - dt.timedelta(days=conf.PROCESSED_BATCH_RETENTION_DAYS)
    # A record counted as invalid keeps its mark until it is replayed (see ledger.py).
    old = ProcessedBatch.objects.filter(created_at__lt=cutoff)
    deleted, _ = old.exclude(batch_id__endswith=INVALID_SUFFIX).delete()
    return deleted
