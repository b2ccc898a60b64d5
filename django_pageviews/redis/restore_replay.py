"""Hand a parked restored group (redis/restore.py) back to the drain, in slices, exactly once.

A group holds everything a restored Redis had pending: after a long backlog, hundreds of
thousands of count fields and raw events. It goes back as claims of at most BATCH_SIZE
count fields and the raw events of at most BATCH_SIZE views each (whole list elements,
at least one), as the drain would have claimed them; the events not yet written go back
as one JSON text each (wire.encode_event), which every version reads. One
REPLAY call for all of it would pass Redis 6.2's limit of 1,048,576 arguments per command
(the connection is reset), or outlast the client's socket timeout, and make one huge
transaction for cleanup.

Each slice leaves the group in the same atomic call that makes its claim, so a replay
that stops midway leaves the rest parked (shown by pageviews_status), and running it
again replays only the rest. The group counts the slices replayed: a replay that finds
the count changed since it read the group (another replay at work) reads it again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django_pageviews.conf import conf
from django_pageviews.events import local_day
from django_pageviews.models import PageView
from django_pageviews.toplists import list_entries
from django_pageviews.wire import (
    RawEvent,
    count_field,
    decode_event,
    dimension_totals,
    encode_event,
)

from .buffer import Keys, all_shards, read_elements
from .client import get_client
from .packing import unpack

logger = logging.getLogger(__name__)

LOOKUP_CHUNK = 1000  # event ids per database query
ATTEMPTS = 10  # re-reads of a group another replay is taking slices of


def replay_restored(group_ids: Sequence[str] | None = None) -> list[str]:
    """Hand parked restored groups (all, or those named) back to the drain, as claimed
    batches that the next ``cleanup_old_buffer_data`` run (or ``drain.cleanup()``)
    writes, exactly once. The new batch ids (none for a group with nothing left).

    A raw event already in the database proves its view was written: it is left out, with
    one view of its count field. With PAGEVIEW_STORE_RAW on, the raw rows are then exact
    (each event once), and so are the daily counts when the batches drained after the
    snapshot took their count fields with the raw events of the same views (a backlog
    drained whole). They need not: a claim takes up to BATCH_SIZE count fields and, apart,
    up to BATCH_SIZE raw events, so a view whose count was written after the snapshot and
    whose event was not is counted again, and one whose event was written and count not
    is left out (at most the views of the batches drained after the snapshot). Counts
    with no raw event (counts-only sites) cannot be told apart and are all replayed: views
    parked because they were written already are then counted again.
    """
    client = get_client()
    batch_ids: list[str] = []
    for keys in all_shards(client):  # a group is replayed into its own shard
        parked = client.zrange(keys.restored_groups, 0, -1)
        for group_id in parked if group_ids is None else [g for g in group_ids if g in parked]:
            batch_ids += _replay_group(client, group_id, keys)
    return batch_ids


def _replay_group(client: Any, group_id: str, keys: Keys) -> list[str]:
    batch_ids: list[str] = []
    for _ in range(ATTEMPTS):
        # Not one transaction (the elements are read undecoded, which EXEC's reply cannot
        # be): the version ("replayed") is read first, and any slice replayed after it
        # changes it, so REPLAY refuses a slice built from a group that changed meanwhile.
        with client.pipeline(transaction=False) as pipe:
            pipe.zscore(keys.restored_groups, group_id)
            pipe.hget(keys.restored(group_id, "info"), "replayed")
            pipe.hgetall(keys.restored(group_id, "counts"))
            read_elements(pipe, keys.restored(group_id, "events"))
            parked, replayed, stored, elements = pipe.execute()
        if parked is None:
            return batch_ids
        fields = sorted(stored)
        unpacked = [unpack(element) for element in elements]
        net, written = _not_yet_written(Counter({f: int(n) for f, n in stored.items()}), unpacked)
        # Old enough for cleanup's next run to take it as a claim whose flusher stopped.
        claimed_at = time.time() - conf.BUFFER_TIMEOUT - 1
        n = conf.BATCH_SIZE
        field_slices = [fields[i : i + n] for i in range(0, len(fields), n)]
        element_slices = _element_slices(unpacked, n)
        version = int(replayed or 0)
        for k in range(max(len(field_slices), len(element_slices), 1)):
            taken = field_slices[k] if k < len(field_slices) else []
            lo, hi = element_slices[k] if k < len(element_slices) else (0, 0)
            kept = [
                raw if isinstance(raw, str) else encode_event(raw)
                for i in range(lo, hi)
                for j, raw in enumerate(unpacked[i])
                if (i, j) not in written
            ]
            counts = Counter({f: net[f] for f in taken if net[f] > 0})
            status, batch_id = _replay_slice(
                client, keys, group_id, version, taken, hi - lo, counts, kept, claimed_at
            )
            if status == -1:
                break  # another replay took a slice: read the group again
            if batch_id is not None:
                batch_ids.append(batch_id)
            if status in (0, 2):
                _log(group_id, net, sum(map(len, unpacked)), written, batch_ids)
                return batch_ids
            version += 1
    raise RuntimeError(f"Restored page-view group {group_id} kept changing while replayed.")


def _element_slices(unpacked: list[list[RawEvent]], n: int) -> list[tuple[int, int]]:
    """Consecutive ranges of list elements holding at most ``n`` views each (at least one
    element: an element is taken whole, as CLAIM takes it)."""
    slices: list[tuple[int, int]] = []
    lo = views = 0
    for i, events in enumerate(unpacked):
        if i > lo and views + len(events) > n:
            slices.append((lo, i))
            lo, views = i, 0
        views += len(events)
    if lo < len(unpacked):
        slices.append((lo, len(unpacked)))
    return slices


def _replay_slice(
    client: Any,
    keys: Keys,
    group_id: str,
    version: int,
    taken: list[str],
    n_elements: int,
    counts: Counter[str],
    events: list[str],
    claimed_at: float,
) -> tuple[int, str | None]:
    """(REPLAY's status, the new claim's batch id if one was made)."""
    from .scripts import replay

    dims = dimension_totals(counts.items())
    lists = list_entries(counts.items())
    batch_id = uuid.uuid4().hex
    args: list[Any] = [group_id, batch_id, claimed_at, version, len(taken), n_elements]
    args += [2 * len(counts), 2 * len(dims), 3 * len(lists), *taken]
    for counter in (counts, dims):
        for name, n in counter.items():
            args += (name, n)
    for (name, member), n in lists.items():
        args += (name, member, n)
    args += events
    reply = replay(
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
    status = int(reply[0])
    return status, batch_id if status > 0 and int(reply[1]) else None


def _log(
    group_id: str, net: Counter[str], raw: int, written: set[tuple[int, int]], batch_ids: list[str]
) -> None:
    logger.warning(
        "Restored page-view group %s handed back to the drain: %d views (%s), %d of %d raw "
        "events already in the database left out.",
        group_id,
        sum(net.values()),
        f"{len(batch_ids)} batches" if batch_ids else "nothing to write",
        len(written),
        raw,
    )


def _not_yet_written(
    counts: Counter[str], unpacked: list[list[RawEvent]]
) -> tuple[Counter[str], set[tuple[int, int]]]:
    """The counts of a group less those of its raw events the database has, and the
    places (element, event in it) of those events in the group's list."""
    decoded = {}
    for i, events in enumerate(unpacked):
        for j, raw in enumerate(events):
            try:
                decoded[(i, j)] = decode_event(raw)
            except (ValueError, TypeError):
                continue  # unreadable: replayed, and skipped as invalid by the drain
    ids = [uuid.UUID(e.event_id) for e in decoded.values() if _is_uuid(e.event_id)]
    known: set[uuid.UUID] = set()
    for i in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[i : i + LOOKUP_CHUNK]
        known.update(PageView.objects.filter(event_id__in=chunk).values_list("event_id", flat=True))
    written = set()
    for place, event in decoded.items():
        if _is_uuid(event.event_id) and uuid.UUID(event.event_id) in known:
            written.add(place)
            counts[count_field(local_day(event.timestamp), event.target)] -= 1
    return +counts, written


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
