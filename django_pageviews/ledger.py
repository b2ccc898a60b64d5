"""The batch ids in the database, and what they say about a batch the database refused.

Every batch is written under its id (``ProcessedBatch``), in its own transaction, so that
a replay changes nothing. A batch the database refuses for its data is split by the drain
(splitting.py); two more kinds of id make that exactly once across crashes and replays:

- ``<id>~split``, recorded with ``<id>`` itself before any part is written: the batch can
  never be written whole any more (its id is taken), and whoever finds the claim again
  (cleanup, a replay) carries on with the same parts, whose ids derive from ``<id>``.
- ``<id>~invalid``, for a single record still refused: the views it holds are counted as
  ``invalid`` (SkippedDaily) in the same transaction. A later replay of the record, under
  ``<id>``, takes them back from ``invalid`` in its own transaction (``forget_invalid``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, IntegrityError, router, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from . import stats
from .events import local_day
from .models import ProcessedBatch, SkippedDaily
from .upsert import upsert_skipped

SPLIT_SUFFIX = "~split"
INVALID_SUFFIX = "~invalid"
IDS_PER_QUERY = 900  # under SQLite's oldest limit of 999 parameters

WRITTEN = "written"
SPLIT = "split"
INVALID = "invalid"


def database() -> str:
    return router.db_for_write(ProcessedBatch) or DEFAULT_DB_ALIAS


def batch_states(batch_ids: Iterable[str]) -> dict[str, str]:
    """WRITTEN, SPLIT or INVALID for each of ``batch_ids`` the database knows (one query
    per 300 ids); an id it does not know is left out (never written, nor begun)."""
    ids = list(batch_ids)
    names = [f"{b}{suffix}" for b in ids for suffix in ("", SPLIT_SUFFIX, INVALID_SUFFIX)]
    known: set[str] = set()
    rows = ProcessedBatch.objects.using(database())
    for start in range(0, len(names), IDS_PER_QUERY):
        chunk = names[start : start + IDS_PER_QUERY]
        known.update(rows.filter(batch_id__in=chunk).values_list("batch_id", flat=True))
    states: dict[str, str] = {}
    for b in ids:
        if b + SPLIT_SUFFIX in known:
            states[b] = SPLIT
        elif b in known:
            states[b] = WRITTEN
        elif b + INVALID_SUFFIX in known:
            states[b] = INVALID
    return states


def start_split(batch_id: str) -> bool:
    """Take ``batch_id`` for a split (it will never be written whole); False if it was
    written whole meanwhile (by a cleanup racing the flusher), True if split now or
    before."""
    using = database()
    try:
        with transaction.atomic(using=using):
            ProcessedBatch.objects.using(using).bulk_create(
                [
                    ProcessedBatch(batch_id=batch_id, views=0),
                    ProcessedBatch(batch_id=batch_id + SPLIT_SUFFIX, views=0),
                ]
            )
    except IntegrityError:
        return ProcessedBatch.objects.using(using).filter(batch_id=batch_id + SPLIT_SUFFIX).exists()
    return True


class _Written(Exception):
    pass


def record_invalid(batch_id: str, views: int) -> bool:
    """Count the ``views`` of a record refused for good as invalid, once. False if the
    record has been written under ``batch_id`` meanwhile (a replay won the race)."""
    using = database()
    now = timezone.now()
    try:
        with transaction.atomic(using=using):
            ProcessedBatch.objects.using(using).create(
                batch_id=batch_id + INVALID_SUFFIX, views=views, created_at=now
            )
            if ProcessedBatch.objects.using(using).filter(batch_id=batch_id).exists():
                raise _Written
            if views:
                upsert_skipped([(local_day(now.timestamp()), stats.SKIP_INVALID, views)], using)
    except IntegrityError:
        return True  # counted before (a flusher that stopped before parking it)
    except _Written:
        return False
    return True


def forget_invalid(batch_id: str, using: str) -> int:
    """Inside the transaction that writes ``batch_id``: the views counted as invalid under
    it (if any) are no longer invalid. The number taken back."""
    marker = ProcessedBatch.objects.using(using).filter(batch_id=batch_id + INVALID_SUFFIX).first()
    if marker is None:
        return 0
    marker.delete()
    if marker.views:
        SkippedDaily.objects.using(using).filter(
            day=local_day(marker.created_at.timestamp()), reason=stats.SKIP_INVALID
        ).update(requests=Greatest(F("requests") - marker.views, 0))
    return marker.views
