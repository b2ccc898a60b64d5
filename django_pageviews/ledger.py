"""The batch ids in the database, and what they say about a batch the database refused.

Every batch is written under its id (``ProcessedBatch``), in its own transaction, so that
a replay changes nothing. A batch the database refuses for its data is split by the drain
(redis/splitting.py); two more kinds of id make that exactly once across crashes and replays:

- ``<id>~split``, recorded with ``<id>`` itself before any part is written: the batch can
  never be written whole any more (its id is taken), and whoever finds the claim again
  (cleanup, a replay) carries on with the same parts, whose ids derive from ``<id>``.
- ``<id>.<lo>-<hi>``, a part: records ``lo`` to ``hi`` (excluded) of the batch in its
  stable order (count fields sorted, then raw events), written, or split in turn.
- ``<id>~invalid``, for a single record still refused: the views it holds are counted as
  ``invalid`` (SkippedDaily) in the same transaction. A later replay of the record, under
  ``<id>``, takes them back from ``invalid`` in its own transaction (``forget_invalid``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, router, transaction
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


def claimed_after(marks: Sequence[tuple[str, int]], using: str) -> tuple[str, list[Any]]:
    """A SQL expression, 1 when the database holds a batch claimed after ``marks`` (a
    mark of the same epoch with a higher claim sequence, for any of them), else 0: an
    index range read (redis_epoch, redis_seq) each, put in a live read's own statement
    (live.py, decision 46)."""
    table = connections[using].ops.quote_name(ProcessedBatch._meta.db_table)
    later = " OR ".join(["(redis_epoch = %s AND redis_seq > %s)"] * len(marks))
    params: list[Any] = [value for mark in marks for value in mark]
    return f"CASE WHEN EXISTS (SELECT 1 FROM {table} WHERE {later}) THEN 1 ELSE 0 END", params


def part_id(root_id: str, lo: int, hi: int) -> str:
    return f"{root_id}.{lo}-{hi}"


def committed_counts(
    claims: Mapping[str, Mapping[str, int]], using: str
) -> dict[str, dict[str, int]]:
    """Of open claims (batch id -> count field -> views), the counts the database holds:
    all of a claim written whole, those of the parts written so far of a claim being split
    (a flusher that stopped mid-split leaves it so until cleanup), none of one not begun.
    A live read takes these out of Redis's live totals; taking out a whole split claim
    would lose the views of its parts not written yet."""
    rows = ProcessedBatch.objects.using(using)
    names = [f"{b}{suffix}" for b in claims for suffix in ("", SPLIT_SUFFIX)]
    known: set[str] = set()
    for start in range(0, len(names), IDS_PER_QUERY):
        chunk = names[start : start + IDS_PER_QUERY]
        known.update(rows.filter(batch_id__in=chunk).values_list("batch_id", flat=True))
    committed: dict[str, dict[str, int]] = {}
    for batch_id, counts in claims.items():
        if batch_id + SPLIT_SUFFIX in known:
            parts = rows.filter(batch_id__startswith=batch_id + ".")
            committed[batch_id] = _in_parts(
                batch_id, counts, parts.values_list("batch_id", flat=True)
            )
        elif batch_id in known:
            committed[batch_id] = dict(counts)
    return committed


def _in_parts(root_id: str, counts: Mapping[str, int], names: Iterable[str]) -> dict[str, int]:
    """The counts of the parts written (a split part, or a mark, is not one)."""
    found = set(names)
    fields = sorted(counts)
    written: dict[str, int] = {}
    for name in found:
        lo, _, hi = name[len(root_id) + 1 :].partition("-")
        if lo.isdigit() and hi.isdigit() and name + SPLIT_SUFFIX not in found:
            written.update((f, counts[f]) for f in fields[int(lo) : int(hi)])
    return written


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
