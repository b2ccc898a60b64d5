"""Records the database refuses, kept in Redis under ``aside:`` keys until a replay.

The replay is ``pageviews_flush --retry-aside`` (redis/retry_aside.py); until then they stay out of
the drain's way.
"""

from __future__ import annotations

import time
from typing import Any

from django_pageviews.wire import counts_views, encode_event

from .buffer import Claim, Keys, all_shards, count_views, read_chunks


def park(client: Any, record: Claim) -> None:
    """Keep a record the database refuses under the ``aside:`` keys of its own id, out of
    the drain's way, for a replay. Idempotent: parking it again changes nothing."""
    from .scripts import set_aside as set_aside_script

    keys = record.keys
    args: list[Any] = [record.batch_id, time.time(), len(record.counts)]
    for name, n in record.counts.items():
        args += (name, n)
    # One text element per event, as earlier versions kept them: set aside are single
    # records, and a replay reads them one by one.
    args += [raw if isinstance(raw, str) else encode_event(raw) for raw in record.raw_events]
    set_aside_script(
        keys=[keys.aside_chunk(record.batch_id), keys.aside_evchunk(record.batch_id), keys.aside],
        args=args,
        client=client,
    )


def aside_ids(client: Any, keys: Keys | None = None) -> list[str]:
    """Ids set aside in a shard (shard 0 by default), oldest first."""
    ids: list[str] = client.zrange((keys or Keys.current()).aside, 0, -1)
    return ids


def read_aside(client: Any, batch_id: str, keys: Keys | None = None) -> Claim:
    keys = keys or Keys.current()
    return read_chunks(
        client, keys.aside_chunk(batch_id), keys.aside_evchunk(batch_id), batch_id, keys
    )


def unpark(client: Any, batch_id: str, keys: Keys | None = None) -> None:
    """Forget a set-aside record once it is written (or found written)."""
    keys = keys or Keys.current()
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.aside_chunk(batch_id), keys.aside_evchunk(batch_id))
        pipe.zrem(keys.aside, batch_id)
        pipe.execute()


def aside_status(client: Any) -> dict[str, int]:
    """What is set aside in every shard: records (or old whole batches), their count
    fields, raw events, and the views their counts hold."""
    batches = fields = views = events = 0
    for keys in all_shards(client):
        ids = aside_ids(client, keys)
        with client.pipeline(transaction=False) as pipe:
            for batch_id in ids:
                pipe.hgetall(keys.aside_chunk(batch_id))
            replies = pipe.execute()
        batches += len(ids)
        for batch_id, counts in zip(ids, replies, strict=True):
            fields += len(counts)
            events += count_views(client, keys.aside_evchunk(batch_id))
            views += sum(int(n) for f, n in counts.items() if counts_views(f))
    return {"batches": batches, "count_fields": fields, "raw_events": events, "views": views}
