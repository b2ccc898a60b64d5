"""Write a batch of events to the database in one transaction, exactly once.

The batch id is inserted first, in the same transaction as the rows and the daily totals:
a batch replayed after a crash or a lost commit acknowledgement hits the unique batch id
and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, IntegrityError, router, transaction
from django.utils import timezone

from .conf import conf
from .events import PK, PageViewEvent, Target, local_day
from .models import TARGET_HASH_LENGTH, PageView, PageViewDaily, ProcessedBatch
from .privacy import with_visitor_hashes
from .salts import forget_old_salts
from .upsert import upsert_rollups, upsert_skipped
from .url_cap import cap_new_urls

RAW_INSERT_BATCH = 500

# The resolved object of a target: (content type id, object id), or (None, "").
Resolved = tuple[int | None, str]


def write_batch(
    batch_id: str,
    events: Sequence[PageViewEvent],
    totals: Mapping[tuple[date, Target], int] | None = None,
    skipped: Mapping[tuple[date, str], int] | None = None,
    claim_mark: tuple[str, int] | None = None,
) -> int:
    """Store a batch under ``batch_id``: raw rows for ``events``, daily totals (``totals``,
    or counted from ``events``) and requests not counted (``skipped``, by day and reason).
    The number of views written, 0 for a replay. ``claim_mark``: the Redis claim's (epoch,
    sequence number), kept with the batch id (restore.py).
    """
    using = router.db_for_write(PageViewDaily) or DEFAULT_DB_ALIAS
    events = with_visitor_hashes(events)  # before the transaction: a salt is made at most once
    if totals is None:
        totals = Counter((local_day(e.timestamp), e.target) for e in events)
    totals, overflow = cap_new_urls(totals, using)
    skipped = Counter(skipped) + overflow
    targets = {t for _, t in totals} | {e.target for e in events}
    resolved = resolve_targets(targets, using)
    rows: Counter[tuple[date, str, int | None, str, str, str]] = Counter()
    for (day, target), views in totals.items():
        content_type_id, object_id = resolved[target]
        url, view_name = target.url, target.view_name
        key = target_hash(content_type_id, object_id, url, view_name)
        rows[(day, key, content_type_id, object_id, url, view_name)] += views
    views = sum(totals.values())
    try:
        with transaction.atomic(using=using):
            epoch, seq = claim_mark or ("", None)
            ProcessedBatch.objects.using(using).create(
                batch_id=batch_id, views=views, redis_epoch=epoch, redis_seq=seq
            )
            if conf.STORE_RAW and events:
                PageView.objects.using(using).bulk_create(
                    _raw_rows(events, resolved), batch_size=RAW_INSERT_BATCH
                )
            upsert_rollups([(*row, n) for row, n in rows.items()], using)
            upsert_skipped([(day, reason, n) for (day, reason), n in skipped.items()], using)
    except IntegrityError:
        if ProcessedBatch.objects.using(using).filter(batch_id=batch_id).exists():
            return 0
        raise
    return views


def resolve_targets(targets: set[Target], using: str) -> dict[Target, Resolved]:
    """Content type and primary key of each target, with one query per model and field.

    An object that cannot be found (deleted, or a model no longer installed) is counted
    for its URL and view name only.
    """
    lookups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for t in targets:
        if t.model:
            lookups[(t.model, t.field)].add(t.value)
    found: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
    for (label, field), values in lookups.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        content_type_id = ContentType.objects.db_manager(using).get_for_model(model).pk
        if field == PK:
            pks = {v: v for v in values}
        else:
            pairs = model._default_manager.using(using).filter(**{f"{field}__in": values})
            pks = {str(value): str(pk) for value, pk in pairs.values_list(field, "pk")}
        found[(label, field)] = (content_type_id, pks)
    resolved: dict[Target, Resolved] = {}
    for t in targets:
        content_type_id, pks = found.get((t.model, t.field), (0, {}))
        object_id = pks.get(t.value)
        resolved[t] = (content_type_id, object_id) if object_id is not None else (None, "")
    return resolved


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
    deleted, _ = ProcessedBatch.objects.filter(created_at__lt=cutoff).delete()
    return deleted
