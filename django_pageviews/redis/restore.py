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

Each shard of the buffer (decision 42) names its own epoch and keeps its own claim
sequence, so each is checked, parked and replayed apart: on a cluster one shard's
primary may go back in time while the others do not.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db.models import Max

from django_pageviews import stats
from django_pageviews.models import ProcessedBatch
from django_pageviews.toplists import list_entries
from django_pageviews.wire import counts_views, dimension_totals

from .buffer import Keys, all_shards, count_views, saw_mark
from .restore_replay import replay_restored as replay_restored  # in slices: its own module

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


def park_restored(client: Any, keys: Keys | None = None) -> str | None:
    """Park what a shard (shard 0 by default) of a Redis that went back in time holds as
    pending; the new group's id, or None when it did not go back (or held nothing
    pending)."""
    return check_restored(client, keys or Keys.current())[0]


def check_restored(client: Any, keys: Keys) -> tuple[str | None, str | None]:
    """``park_restored``, and the registry (buffer.shard_count) read in the same round
    trip for shard 0 (None for the others): a drain learns which shards to visit at no
    cost."""
    from .scripts import park

    registry = None
    for _ in range(ATTEMPTS):
        with client.pipeline(transaction=False) as pipe:
            pipe.get(keys.epoch)
            pipe.get(keys.seq)
            pipe.zrange(keys.claims, 0, -1)
            if keys.number == 0:
                pipe.get(keys.registry)
            epoch, seq, claim_ids, *rest = pipe.execute()
        registry = rest[0] if rest else registry
        if epoch is None:
            return None, registry  # nothing was shipped to this shard since it was empty
        high = _high_water_mark(epoch)
        if high is None or int(seq or 0) >= high:
            saw_mark(epoch, int(seq or 0), keys)
            return None, registry
        group_id = uuid.uuid4().hex
        resume = high + SEQUENCE_GAP
        args: list[Any] = [seq or "", epoch, high, resume, group_id, time.time(), len(claim_ids)]
        args += claim_ids
        dims, lists = _open_claim_totals(client, claim_ids, keys)
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
        saw_mark(epoch, resume, keys)
        stats.incr(RESTORED)
        logger.error(
            "The Redis page-view buffer (shard %d) went back in time (claim sequence %s, the "
            "database has written up to %d): it was restored from an older snapshot. %s",
            keys.number,
            seq or "missing",
            high,
            f"Its pending views are parked as restored group {group_id}, not drained: they "
            "may have been counted already. See pageviews_status."
            if parked
            else "It held nothing pending.",
        )
        return (group_id if parked else None), registry
    raise RestoreCheckError("The Redis page-view buffer kept changing while being checked.")


def _high_water_mark(epoch: str) -> int | None:
    found = ProcessedBatch.objects.filter(redis_epoch=epoch).aggregate(high=Max("redis_seq"))
    high: int | None = found["high"]
    return high


def _open_claim_totals(
    client: Any, claim_ids: Sequence[str], keys: Keys
) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """The live totals and per-day lists (toplists.py) of the open claims."""
    with client.pipeline(transaction=False) as pipe:
        for batch_id in claim_ids:
            pipe.hgetall(keys.chunk(batch_id))
        chunks = pipe.execute()
    counts = [(field, int(n)) for chunk in chunks for field, n in chunk.items()]
    return dimension_totals(counts), list_entries(counts)


def restored_status(client: Any) -> list[dict[str, Any]]:
    """The parked restored groups of every shard, oldest first, for pageviews_status."""
    groups = []
    for keys, group_id, _ in sorted(
        (
            (shard, group_id, at)
            for shard in all_shards(client)
            for group_id, at in client.zrange(shard.restored_groups, 0, -1, withscores=True)
        ),
        key=lambda found: found[2],
    ):
        with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.restored(group_id, "info"))
            pipe.hgetall(keys.restored(group_id, "counts"))
            info, counts = pipe.execute()
        views = sum(int(n) for f, n in counts.items() if counts_views(f))
        groups.append(
            {
                "group": group_id,
                "parked_at": float(info.get("parked_at", 0)),
                "views": views,
                "count_fields": len(counts),
                "raw_events": count_views(client, keys.restored(group_id, "events")),
                "redis_seq": info.get("redis_seq"),
                "database_seq": info.get("database_seq"),
                "shard": keys.number,
            }
        )
    return groups
