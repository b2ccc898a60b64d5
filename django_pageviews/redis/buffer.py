"""The Redis buffer: ship pre-aggregated counts in, claim batches out, acknowledge them.

The buffer is PAGEVIEW_BUFFER_SHARDS shards, each its own hash tag (one slot of a Redis
Cluster): shard 0 is ``{prefix}:``, the only one before shards existed, and shard i > 0
is ``{prefix:i}:`` (decision 42). Each shard holds the keys below; ``shards``, in shard 0
only, is the registry: the highest shard count any producer shipped with, so that drains
and live reads of a process set to fewer shards still visit every shard that holds views.

Keys of each shard:

- ``pending``: hash, count field (day + target) -> views not yet claimed
- ``dims``: hash, the total of views not yet acknowledged (``t``), and ``dims:<n>``: small
  hashes, 8-byte digest of a dimension -> its views not yet acknowledged (what live reads
  add; decision 28, redis.scripts.DIMS). Earlier versions kept every dimension in ``dims``
  by its full name: still read and drained.
- ``events``: list of raw events, when PAGEVIEW_STORE_RAW is on: one element per shipment
  (redis/packing.py), or per view from earlier versions
- ``claims``: sorted set, batch id -> claim time
- ``chunk:<id>`` / ``evchunk:<id>``: the counts and raw events of one claimed batch
- ``top``, ``top:<day list>:<n>``: sorted sets of views not yet acknowledged, per day, each
  list spread over small sets (toplists.py; ``top:<day list>``: a whole list of an earlier
  version, still read and drained)
- ``seq``, ``oldest``, ``counters``, ``early``, ``sent:<shipment id>``: bookkeeping
- ``epoch`` (named by the first shipment into an empty Redis) and ``claimmarks`` (batch id
  -> "epoch:seq" of each open claim): what redis/restore.py compares with the database
- ``restored`` and ``restored:<group id>:*``: pending data of a Redis that went back in
  time, parked by redis/restore.py
- ``aside``: sorted set, id -> time set aside; ``aside:chunk:<id>`` / ``aside:evchunk:<id>``:
  the counts and raw events of a record the database refused (or, from earlier
  development versions, a whole claim), kept for ``pageviews_flush --retry-aside``
- ``seq:hold``: a live read holding new claims off for a moment (live.py)
- ``ackargs:<id>``: the arguments of a very large ACK, for the moment it runs (``ack``)
- ``failed``: sorted set, batch id -> when the database last failed to write that claim;
  the next drain writes those first, and claims nothing new while it cannot (redis/drain.py)

A batch is written to the database in one transaction with its batch id, then
acknowledged; a flusher killed in between leaves the claim, which cleanup acknowledges
(batch id in the database) or replays (not there).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from django_pageviews import stats
from django_pageviews.conf import PREFIX, conf, redis_url
from django_pageviews.events import PageViewEvent
from django_pageviews.toplists import DAY_LENGTH, list_entries, member_bucket
from django_pageviews.wire import TOTAL, RawEvent, dimension_slot, dimension_totals

from .packing import NEVER_DECODE, unpack_all
from .packing import views as element_views

logger = logging.getLogger(__name__)

WENT_BACK = "redis_went_back"  # stats counter: claims refused by a Redis gone back in time
DRAINED_VIEWS = "drained_views"  # field of the counters hash: views drained, all workers
SENT_MARKER_TTL = 3600  # seconds a shipment id is remembered for idempotent retries
# A live read's hold on new claims: the key (after the seq key, as CLAIM builds it), its
# longest life, what CLAIM answers meanwhile, and how often a held claim asks again.
HOLD_SUFFIX = ":hold"
HOLD_MS = 2000
CLAIM_HELD = -2
WENT_BACK_REPLY = -1  # what CLAIM answers when Redis went back in time
HOLD_POLL = 0.002
ACK_ARGS_INLINE = 100_000  # an ACK with more arguments takes them from a list (_stage)
STAGED = "staged"


class _Key:
    """A key of the buffer, named once: a misspelt name is an AttributeError (and a type
    error), not a new key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, keys: Keys, owner: type[Keys]) -> str:
        return keys.prefix + self.name


@dataclass(frozen=True)
class Keys:
    """The buffer's keys (the module docstring says what each holds), all under the
    prefix's hash tag."""

    prefix: str
    number: int = 0  # the shard's

    pending = _Key("pending")
    events = _Key("events")
    dims = _Key("dims")
    claims = _Key("claims")
    top = _Key("top")
    seq = _Key("seq")
    oldest = _Key("oldest")
    counters = _Key("counters")
    early = _Key("early")
    epoch = _Key("epoch")
    claimmarks = _Key("claimmarks")
    aside = _Key("aside")
    failed = _Key("failed")
    attempts = _Key("attempts")  # left by earlier development versions: ACK deletes it
    registry = _Key("shards")  # shard 0's only: the highest shard count ever shipped with

    @classmethod
    def current(cls) -> Keys:
        """Shard 0's keys: the buffer's as it was before shards (and its registry)."""
        return cls.shard(0)

    @classmethod
    def shard(cls, number: int) -> Keys:
        if number == 0:
            return cls("{" + conf.KEY_PREFIX + "}:")
        return cls("{" + f"{conf.KEY_PREFIX}:{number}" + "}:", number)

    def chunk(self, batch_id: str) -> str:
        return f"{self.prefix}chunk:{batch_id}"

    def evchunk(self, batch_id: str) -> str:
        return f"{self.prefix}evchunk:{batch_id}"

    def aside_chunk(self, batch_id: str) -> str:
        return f"{self.prefix}aside:chunk:{batch_id}"

    def aside_evchunk(self, batch_id: str) -> str:
        return f"{self.prefix}aside:evchunk:{batch_id}"

    def sent(self, shipment_id: str) -> str:
        return f"{self.prefix}sent:{shipment_id}"

    @property
    def restored_groups(self) -> str:
        """Sorted set: restored group id -> when it was parked."""
        return f"{self.prefix}restored:groups"

    def restored(self, group_id: str, part: str) -> str:
        """A part ("counts", "events" or "info") of a parked restored group."""
        return f"{self.prefix}restored:{group_id}:{part}"


@dataclass
class Shipment:
    """One micro-batch on its way to Redis. Its id makes a retry safe. The live totals
    and per-day lists of its counts are derived by the SHIP script."""

    counts: Counter[str]  # count field -> views
    raw: list[bytes | str]  # list elements (redis/packing.py)
    events: list[PageViewEvent]  # kept for the fallback path
    counters: Counter[str] = field(default_factory=Counter)
    skipped: Counter[tuple[date, str]] = field(default_factory=Counter)  # (day, reason)
    shipment_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Its shard, chosen once: a resend goes where its ``sent:`` marker is.
    shard: int = field(default_factory=lambda: next_shard())
    shards: int = field(default_factory=lambda: conf.BUFFER_SHARDS)  # the count it was made with

    def script_args(self) -> tuple[list[str], list[Any]]:
        keys = Keys.shard(self.shard)
        args: list[Any] = [
            SENT_MARKER_TTL,
            time.time(),
            # A shard's share (shipments go round): SHIP sees its own shard's views only.
            -(-conf.EARLY_FLUSH_THRESHOLD // self.shards),
            int(conf.EARLY_FLUSH_INTERVAL * 1000),
            len(self.counts),
            len(self.counters),
            self.shipment_id,  # the epoch, if this is the first shipment into an empty Redis
        ]
        for counter in (self.counts, self.counters):
            for pair in counter.items():
                args += pair
        args += self.raw
        names = [
            keys.pending,
            keys.dims,
            keys.events,
            keys.sent(self.shipment_id),
            keys.oldest,
            keys.counters,
            keys.early,
            keys.epoch,
            keys.top,
        ]
        if self.shard == 0 and self.shards > 1:  # SHIP raises the registry to its count
            names.append(keys.registry)
            args.append(self.shards)
        return names, args


# Shards of this process's shipments: round-robin over PAGEVIEW_BUFFER_SHARDS once a
# shipment to shard 0 has put that count in the registry (SHIP does), shard 0 until then,
# so that no view reaches a shard the registry does not cover. Per (URL, prefix, count).
_registered: set[tuple[str, str, int]] = set()
_turns = itertools.count()


def next_shard() -> int:
    shards = conf.BUFFER_SHARDS
    if shards == 1:
        return 0
    if (redis_url(), conf.KEY_PREFIX, shards) not in _registered:
        return 0
    return next(_turns) % shards


@receiver(setting_changed)
def _forget_registered(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(PREFIX):  # another Redis, prefix or count: register again
        _registered.clear()


def shipped_to(shipment: Shipment) -> None:
    """A shipment landed: one to shard 0 registered its shard count."""
    if shipment.shard == 0 and shipment.shards > 1:
        _registered.add((redis_url(), conf.KEY_PREFIX, shipment.shards))


def shard_count(registry: str | int | None) -> int:
    """The shards to visit: the setting's, or more if the registry (shard 0's ``shards``,
    as read) says a producer shipped to more."""
    return max(conf.BUFFER_SHARDS, int(registry or 1))


def all_shards(client: Any) -> list[Keys]:
    """Every shard that may hold views (one GET: for what runs rarely)."""
    return [Keys.shard(i) for i in range(shard_count(client.get(Keys.current().registry)))]


@dataclass
class Claim:
    batch_id: str
    counts: dict[str, int]
    raw_events: list[RawEvent]  # one per view (packing.unpack)
    mark: tuple[str, int] | None = None  # (epoch, claim sequence number), for redis/restore.py
    keys: Keys = field(default_factory=Keys.current)  # its shard's


def parse_mark(mark: str | None) -> tuple[str, int] | None:
    if not mark:
        return None
    epoch, _, seq = mark.rpartition(":")
    return epoch, int(seq)


# The last claim mark (epoch, claim sequence number) this process saw in each buffer
# (Redis URL and key prefix): a Redis whose sequence falls below it within the same epoch
# went back in time, and claims nothing until redis/restore.py has looked at it.
_seen: dict[tuple[str, str], tuple[str, int]] = {}


def saw_mark(epoch: str, seq: int, keys: Keys | None = None) -> None:
    _seen[(redis_url(), (keys or Keys.current()).prefix)] = (epoch, seq)


def claim(client: Any, size: int, keys: Keys | None = None) -> str | None:
    """Atomically take up to ``size`` count fields and raw events of a shard (shard 0 by
    default); the batch id or None."""
    from .scripts import claim as claim_script

    keys = keys or Keys.current()
    batch_id = uuid.uuid4().hex
    seen_epoch, seen_seq = _seen.get((redis_url(), keys.prefix), ("", 0))
    claimed = CLAIM_HELD
    while claimed == CLAIM_HELD:  # a live read holds claims off for a moment (live.py)
        claimed = claim_script(
            keys=[
                keys.pending,
                keys.events,
                keys.claims,
                keys.chunk(batch_id),
                keys.evchunk(batch_id),
                keys.seq,
                keys.oldest,
                keys.claimmarks,
                keys.epoch,
            ],
            args=[size, time.time(), batch_id, seen_epoch, seen_seq],
            client=client,
        )
        if claimed == CLAIM_HELD:
            time.sleep(HOLD_POLL)
    if claimed == WENT_BACK_REPLY:
        stats.incr(WENT_BACK)
        logger.error(
            "The Redis page-view buffer went back in time during a drain (restored from an "
            "older snapshot?): nothing more is claimed until the next drain has checked it."
        )
        return None
    mark = parse_mark(claimed) if isinstance(claimed, str) else None
    if mark is None:
        return None
    saw_mark(*mark, keys)
    return batch_id


def read_claim(client: Any, batch_id: str, keys: Keys | None = None) -> Claim:
    keys = keys or Keys.current()
    return read_chunks(client, keys.chunk(batch_id), keys.evchunk(batch_id), batch_id, keys)


def read_chunks(
    client: Any, chunk: str, evchunk: str, batch_id: str, keys: Keys | None = None
) -> Claim:
    """A batch's counts and raw events, stored under the keys ``chunk`` and ``evchunk``
    of the shard ``keys`` (shard 0 by default)."""
    keys = keys or Keys.current()
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(chunk)
        read_elements(pipe, evchunk)
        pipe.hget(keys.claimmarks, batch_id)
        counts, elements, mark = pipe.execute()
    return Claim(
        batch_id,
        {f: int(n) for f, n in counts.items()},
        unpack_all(elements),
        parse_mark(mark),
        keys,
    )


def read_elements(client: Any, key: str) -> Any:
    """LRANGE of a raw-event list, undecoded: packed elements are binary (redis/packing.py)."""
    return client.execute_command("LRANGE", key, 0, -1, **{NEVER_DECODE: True})


def raw_event_count(client: Any, key: str) -> int:
    """The views whose raw events a list holds (one element holds a shipment's), counted
    by the client (a script could be held by a CLIENT PAUSE WRITE)."""
    return sum(element_views(e) for e in read_elements(client, key))


def count_views(client: Any, key: str) -> int:
    """``raw_event_count``, counted in Redis: nothing of a long list is fetched."""
    from .scripts import count_views as count_script

    return int(count_script(keys=[key], client=client))


def ack(client: Any, claim: Claim) -> bool:
    """Remove a written batch from Redis and from the live totals (once, however often)."""
    from .scripts import ack as ack_script

    keys = claim.keys
    batch_id = claim.batch_id
    dims = dimension_totals(claim.counts.items())
    args: list[Any] = [batch_id, len(dims)]
    for dim, n in dims.items():
        args += (dim, b"" if dim == TOTAL else dimension_slot(dim)[1], n)
    for (name, member), n in list_entries(claim.counts.items()).items():
        args += (name, member, n, member_bucket(name[: -DAY_LENGTH - 1], member))
    staged = f"{keys.prefix}ackargs:{batch_id}"
    if len(args) > ACK_ARGS_INLINE:
        _stage(client, staged, args[2:])
        args = [*args[:2], STAGED]
    removed = ack_script(
        keys=[
            keys.dims,
            keys.claims,
            keys.chunk(batch_id),
            keys.evchunk(batch_id),
            keys.attempts,
            keys.top,
            staged,
        ],
        args=args,
        client=client,
    )
    return bool(removed)


def _stage(client: Any, key: str, values: list[Any]) -> None:
    """Put an ACK's pairs and triples in a list of their own, a slice per command: a batch
    of BATCH_SIZE (up to 50,000) pages each with its own object, URL and view name needs
    1,150,004 arguments, and Redis 6.2 resets a connection that sends more than 1,048,576
    in one command. A flusher that dies before the ACK leaves the list, which the next
    ACK of that claim (cleanup's) starts again."""
    with client.pipeline(transaction=False) as pipe:
        pipe.delete(key)
        for first in range(0, len(values), ACK_ARGS_INLINE):
            pipe.rpush(key, *values[first : first + ACK_ARGS_INLINE])
        pipe.execute()


def mark_failed(client: Any, batch_id: str, keys: Keys | None = None) -> None:
    """Remember a claim the database could not write (an outage): the next drain retries
    it before claiming more. Not remembered on a full (or failing) Redis: the next drain
    then claims on, and cleanup writes this claim in time."""
    from redis.exceptions import RedisError

    try:
        client.zadd((keys or Keys.current()).failed, {batch_id: time.time()})
    except RedisError:
        stats.incr(stats.REDIS_ERROR)
        logger.warning("Redis did not take the mark of page-view batch %s.", batch_id)


def failed_claims(client: Any, keys: Keys | None = None) -> list[str]:
    """The claims the database failed to write and still open, oldest first (those
    finished meanwhile, by cleanup, are forgotten)."""
    keys = keys or Keys.current()
    ids: list[str] = client.zrange(keys.failed, 0, -1)
    if not ids:
        return []
    with client.pipeline(transaction=False) as pipe:
        for batch_id in ids:
            pipe.zscore(keys.claims, batch_id)
        scores = pipe.execute()
    gone = [b for b, score in zip(ids, scores, strict=True) if score is None]
    if gone:
        client.zrem(keys.failed, *gone)
    return [b for b, score in zip(ids, scores, strict=True) if score is not None]


def forget_failed(client: Any, batch_id: str, keys: Keys | None = None) -> None:
    client.zrem((keys or Keys.current()).failed, batch_id)


def claims_older_than(client: Any, seconds: float, keys: Keys | None = None) -> list[str]:
    keys = keys or Keys.current()
    ids: list[str] = client.zrangebyscore(keys.claims, "-inf", time.time() - seconds)
    return ids


def status(client: Any, count_raw_events: bool = True) -> dict[str, Any]:
    """The buffer's state, summed over its shards: one round trip per shard, shard 0's
    with the registry (and, with ``count_raw_events``, one script per shard that walks
    its raw-event list: the metrics, read at every scrape, leave it out, so that a scrape
    costs Redis the same whatever the backlog)."""
    first = _shard_status(client, Keys.current(), count_raw_events, with_registry=True)
    found = [first] + [
        _shard_status(client, Keys.shard(i), count_raw_events)
        for i in range(1, shard_count(first[-1]))
    ]
    now = time.time()
    counters: Counter[str] = Counter()
    for shard in found:
        counters.update({k: int(v) for k, v in shard[6].items()})
    views, ms = counters.get("last_flush_views", 0), counters.get("last_flush_ms", 0)
    claim_times = [shard[3][0][1] for shard in found if shard[3]]
    pending_since = [float(shard[5]) for shard in found if shard[5]]
    raw = [shard[2] for shard in found]
    return {
        "pending_views": sum(int(shard[0] or 0) for shard in found),
        "pending_count_fields": sum(shard[1] for shard in found),
        "pending_raw_events": sum(raw) if count_raw_events else None,
        "claimed_batches": sum(shard[4] for shard in found),
        "batches_set_aside": sum(shard[7] for shard in found),
        "restored_groups": sum(shard[8] for shard in found),
        "oldest_claim_age_seconds": round(now - min(claim_times), 3) if claim_times else None,
        "oldest_pending_age_seconds": (
            round(now - min(pending_since), 3) if pending_since else None
        ),
        "last_flush_rate_views_per_second": round(views * 1000 / ms) if ms else None,
        "counters": dict(counters),
        "shards": len(found),
    }


def _shard_status(
    client: Any, keys: Keys, count_raw_events: bool, with_registry: bool = False
) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        pipe.hget(keys.dims, "t")
        pipe.hlen(keys.pending)
        pipe.llen(keys.events)
        pipe.zrange(keys.claims, 0, 0, withscores=True)
        pipe.zcard(keys.claims)
        pipe.get(keys.oldest)
        pipe.hgetall(keys.counters)
        pipe.zcard(keys.aside)
        pipe.zcard(keys.restored_groups)
        if with_registry:
            pipe.get(keys.registry)
        found: list[Any] = pipe.execute()
    events = found[2]
    found[2] = (count_views(client, keys.events) if events else 0) if count_raw_events else 0
    return found


def record_flush(client: Any, views: int, seconds: float) -> None:
    from redis.exceptions import OutOfMemoryError

    counters = Keys.current().counters
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.hset(
                counters,
                mapping={
                    "last_flush_at": int(time.time()),
                    "last_flush_views": views,
                    "last_flush_ms": int(seconds * 1000),
                },
            )
            # Every drain's views, summed in Redis: the site's drained views whichever
            # worker drained them (the metrics' pageviews_redis_drained_views_total).
            pipe.hincrby(counters, DRAINED_VIEWS, views)
            pipe.execute()
    except OutOfMemoryError:
        # Statistics only: a Redis still full after a drain (memory held by other data)
        # must not turn the drain that wrote its batches into a failure.
        stats.incr(stats.REDIS_ERROR)
        logger.warning("Redis is full: the last flush's statistics were not recorded.")
