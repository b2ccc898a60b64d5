"""How the version before issue #11 shipped views to Redis, kept for comparison in the
same run (bench/redis_memory.py): one JSON list element per view (``wire.encode_event``),
the live totals and day lists computed by the producer and sent with each shipment, and
its SHIP script (as in django_pageviews/redis/scripts.py before the change)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from itertools import product
from typing import Any

from redis.commands.core import Script

from django_pageviews.redis.scripts import CHUNKED

SHIP = (
    CHUNKED
    + """
local nf, nd, nc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local nl = tonumber(ARGV[9])
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then return {-1, 0} end
local i = 10
for _ = 1, nf do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nd do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nc do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
local listed = {}
for _ = 1, nl do
  redis.call('ZINCRBY', KEYS[9] .. ':' .. ARGV[i], -tonumber(ARGV[i + 2]), ARGV[i + 1])
  listed[ARGV[i]] = (listed[ARGV[i]] or 0) + tonumber(ARGV[i + 2]); i = i + 3
end
for name, n in pairs(listed) do redis.call('ZINCRBY', KEYS[9], n, name) end
if i <= #ARGV then chunked('RPUSH', KEYS[3], ARGV, i, #ARGV) end
if nf > 0 then redis.call('SET', KEYS[5], ARGV[2], 'NX') end
redis.call('SET', KEYS[8], ARGV[8], 'NX')
local total = tonumber(redis.call('HGET', KEYS[2], 't') or '0')
local threshold = tonumber(ARGV[3])
local early = 0
if threshold > 0 and total >= threshold then
  if redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[4]) then early = 1 end
end
return {total, early}
"""
)
ship = Script(None, SHIP.encode())  # type: ignore[arg-type]


def dimensions(target: Any) -> list[str]:
    from django_pageviews.wire import dimension, object_key

    objects = (
        [None, object_key(target.model, target.field, target.value)] if target.model else [None]
    )
    return [
        dimension(o, u, v)
        for o, u, v in product(objects, (None, target.url), (None, target.view_name))
    ]


def build(events: Sequence[Any], raw: bool) -> tuple[list[str], list[Any]]:
    """The previous build_shipment and Shipment.script_args: SHIP's keys and arguments."""
    from django_pageviews import stats
    from django_pageviews.conf import conf
    from django_pageviews.events import local_day
    from django_pageviews.privacy import with_visitor_hashes
    from django_pageviews.redis.buffer import SENT_MARKER_TTL, Keys
    from django_pageviews.toplists import list_entries
    from django_pageviews.wire import count_field, encode_event, skipped_field

    events = with_visitor_hashes(events)
    skipped = stats.take_unsaved()
    counts: Counter[str] = Counter({skipped_field(d, r): n for (d, r), n in skipped.items()})
    targets: Counter[Any] = Counter()
    for e in events:
        counts[count_field(local_day(e.timestamp), e.target)] += 1
        targets[e.target] += 1
    dims: Counter[str] = Counter()
    for target, n in targets.items():
        for d in dimensions(target):
            dims[d] += n
    encoded = [encode_event(e) for e in events] if raw else []
    lists = list_entries(counts.items())
    keys = Keys.current()
    shipment_id = uuid.uuid4().hex
    args: list[Any] = [
        SENT_MARKER_TTL,
        time.time(),
        conf.EARLY_FLUSH_THRESHOLD,
        int(conf.EARLY_FLUSH_INTERVAL * 1000),
        len(counts),
        len(dims),
        0,
        shipment_id,
        len(lists),
    ]
    for counter in (counts, dims):
        for name, n in counter.items():
            args += (name, n)
    for (name, member), n in lists.items():
        args += (name, member, n)
    args += encoded
    return [
        keys.pending,
        keys.dims,
        keys.events,
        keys.sent(shipment_id),
        keys.oldest,
        keys.counters,
        keys.early,
        keys.epoch,
        keys.top,
    ], args
