"""A Redis buffer that went back in time must not be drained twice.

A Redis restored from an older snapshot (an RDB file, an AOF that lost its tail, a replica
promoted before it caught up) brings back pending views that were already claimed and
written since the snapshot. Draining them again would count them twice, under new batch
ids that the database cannot recognise.

Each claim takes the next number of the buffer's claim sequence (``seq``), and every
batch is committed with its claim's mark: the buffer's epoch (a random name the first
shipment into an empty Redis gives it) and that number. Before claiming, the drain asks
here whether Redis's sequence is behind the highest one the database committed for the
same epoch. If it is, Redis went back: what it holds as pending may have been counted
already, and cannot be told apart from what was not. It is parked, not drained, as one
"restored" group that ``pageviews_status`` shows and ``replay_restored()`` hands back to
the drain when an operator decides so. Open claims found in the restored Redis stay where
they are: cleanup acknowledges those the database has and writes the others.

A Redis that restarted empty names a new epoch with its first shipment: nothing it holds
was drained before, so it is drained as usual.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db.models import Max

from . import stats
from .conf import conf
from .events import local_day
from .models import PageView, ProcessedBatch
from .redis_buffer import Keys, saw_mark
from .redis_client import get_client
from .toplists import list_entries
from .wire import count_field, decode_event, dimension_totals, parse_skipped_field

logger = logging.getLogger(__name__)

RESTORED = "redis_restored"  # stats counter: restored groups parked
# After a restore, claims continue this far above the database's high-water mark: past the
# numbers of batches that were claimed before the failure and are still being written (a
# later commit of one of those must not look like Redis going back again).
SEQUENCE_GAP = 1_000_000
LOOKUP_CHUNK = 1000  # event ids per database query
ATTEMPTS = 10  # re-reads when claims change under the check (other drains at work)


class RestoreCheckError(RuntimeError):
    """Redis kept changing while a restored state was being parked: drain nothing now."""


def park_restored(client: Any) -> str | None:
    """Park what a Redis that went back in time holds as pending; the new group's id, or
    None when Redis did not go back (or held nothing pending)."""
    from .redis_scripts import park

    keys = Keys.current()
    for _ in range(ATTEMPTS):
        with client.pipeline(transaction=False) as pipe:
            pipe.get(keys.epoch)
            pipe.get(keys.seq)
            pipe.zrange(keys.claims, 0, -1)
            epoch, seq, claim_ids = pipe.execute()
        if epoch is None:
            return None  # nothing was ever shipped to this Redis since it started empty
        high = _high_water_mark(epoch)
        if high is None or int(seq or 0) >= high:
            saw_mark(epoch, int(seq or 0))
            return None
        group_id = uuid.uuid4().hex
        resume = high + SEQUENCE_GAP
        args: list[Any] = [seq or "", epoch, high, resume, group_id, time.time(), len(claim_ids)]
        args += claim_ids
        dims, lists = _open_claim_totals(client, claim_ids)
        args.append(2 * len(dims))
        for dim, n in dims.items():
            args += (dim, n)
        for (name, member), n in lists.items():
            args += (name, member, n)
        parked = park(
            keys=[
                keys.seq,
                keys.epoch,
                keys.pending,
                keys.events,
                keys.dims,
                keys.claims,
                keys.oldest,
                keys.restored_groups,
                keys.restored(group_id, "counts"),
                keys.restored(group_id, "events"),
                keys.restored(group_id, "info"),
                keys.top,
            ],
            args=args,
            client=client,
        )
        if parked == -1:
            continue
        saw_mark(epoch, resume)
        stats.incr(RESTORED)
        logger.error(
            "The Redis page-view buffer went back in time (claim sequence %s, the database "
            "has written up to %d): it was restored from an older snapshot. %s",
            seq or "missing",
            high,
            f"Its pending views are parked as restored group {group_id}, not drained: they "
            "may have been counted already. See pageviews_status."
            if parked
            else "It held nothing pending.",
        )
        return group_id if parked else None
    raise RestoreCheckError("The Redis page-view buffer kept changing while being checked.")


def _high_water_mark(epoch: str) -> int | None:
    found = ProcessedBatch.objects.filter(redis_epoch=epoch).aggregate(high=Max("redis_seq"))
    high: int | None = found["high"]
    return high


def _open_claim_totals(
    client: Any, claim_ids: Sequence[str]
) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """The live totals and per-day lists (toplists.py) of the open claims."""
    keys = Keys.current()
    with client.pipeline(transaction=False) as pipe:
        for batch_id in claim_ids:
            pipe.hgetall(keys.chunk(batch_id))
        chunks = pipe.execute()
    counts = [(field, int(n)) for chunk in chunks for field, n in chunk.items()]
    return dimension_totals(counts), list_entries(counts)


def restored_status(client: Any) -> list[dict[str, Any]]:
    """The parked restored groups, oldest first, for pageviews_status."""
    keys = Keys.current()
    groups = []
    for group_id, _ in client.zrange(keys.restored_groups, 0, -1, withscores=True):
        with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.restored(group_id, "info"))
            pipe.hgetall(keys.restored(group_id, "counts"))
            pipe.llen(keys.restored(group_id, "events"))
            info, counts, events = pipe.execute()
        views = sum(int(n) for f, n in counts.items() if parse_skipped_field(f) is None)
        groups.append(
            {
                "group": group_id,
                "parked_at": float(info.get("parked_at", 0)),
                "views": views,
                "count_fields": len(counts),
                "raw_events": events,
                "redis_seq": info.get("redis_seq"),
                "database_seq": info.get("database_seq"),
            }
        )
    return groups


def replay_restored(group_ids: Sequence[str] | None = None) -> list[str]:
    """Hand parked restored groups (all, or those named) back to the drain, each as one
    claimed batch that the next ``cleanup_old_buffer_data`` run (or ``drain.cleanup()``)
    writes, exactly once. The new batch ids (none for a group with nothing left).

    A raw event already in the database proves its view was counted: it is left out, with
    its count. With PAGEVIEW_STORE_RAW on, a replay therefore writes exactly the parked
    views the database lacks. Counts with no raw event (counts-only sites) cannot be told
    apart and are all replayed: views parked because they were written already are then
    counted again.
    """
    from .redis_scripts import replay

    client = get_client()
    keys = Keys.current()
    if group_ids is None:
        group_ids = client.zrange(keys.restored_groups, 0, -1)
    # Old enough for cleanup's next run to take it as a claim whose flusher stopped.
    claimed_at = time.time() - conf.BUFFER_TIMEOUT - 1
    batch_ids = []
    for group_id in group_ids:
        with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.restored(group_id, "counts"))
            pipe.lrange(keys.restored(group_id, "events"), 0, -1)
            stored_counts, raw_events = pipe.execute()
        counts, events = _not_yet_written(
            Counter({f: int(n) for f, n in stored_counts.items()}), raw_events
        )
        dims = dimension_totals(counts.items())
        lists = list_entries(counts.items())
        batch_id = uuid.uuid4().hex
        args: list[Any] = [group_id, batch_id, claimed_at, 2 * len(counts), 2 * len(dims)]
        args.append(3 * len(lists))
        for counter in (counts, dims):
            for name, n in counter.items():
                args += (name, n)
        for (name, member), n in lists.items():
            args += (name, member, n)
        args += events
        replayed = replay(
            keys=[
                keys.restored_groups,
                keys.restored(group_id, "counts"),
                keys.restored(group_id, "events"),
                keys.restored(group_id, "info"),
                keys.claims,
                keys.chunk(batch_id),
                keys.evchunk(batch_id),
                keys.dims,
                keys.seq,
                keys.claimmarks,
                keys.epoch,
                keys.top,
            ],
            args=args,
            client=client,
        )
        if replayed == 1:
            batch_ids.append(batch_id)
        logger.warning(
            "Restored page-view group %s handed back to the drain: %d views (%s), %d raw "
            "events already in the database left out.",
            group_id,
            sum(counts.values()),
            f"batch {batch_id}" if replayed == 1 else "nothing to write",
            len(raw_events) - len(events),
        )
    return batch_ids


def _not_yet_written(counts: Counter[str], raw_events: list[str]) -> tuple[Counter[str], list[str]]:
    """The counts and raw events of a group, less the raw events the database has (and
    the count each of them stands for)."""
    decoded = {}
    for raw in raw_events:
        try:
            decoded[raw] = decode_event(raw)
        except (ValueError, TypeError):
            continue  # unreadable: replayed, and skipped as invalid by the drain
    ids = [uuid.UUID(e.event_id) for e in decoded.values() if _is_uuid(e.event_id)]
    known: set[uuid.UUID] = set()
    for i in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[i : i + LOOKUP_CHUNK]
        known.update(PageView.objects.filter(event_id__in=chunk).values_list("event_id", flat=True))
    keep = []
    for raw in raw_events:
        event = decoded.get(raw)
        if event is None or not _is_uuid(event.event_id) or uuid.UUID(event.event_id) not in known:
            keep.append(raw)
            continue
        counts[count_field(local_day(event.timestamp), event.target)] -= 1
    return +counts, keep


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
