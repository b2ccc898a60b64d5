"""The Redis buffer: ship pre-aggregated counts in, claim batches out, acknowledge them.

Keys (all under one hash tag, ``{prefix}``):

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

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django_pageviews import stats
from django_pageviews.conf import conf, redis_url
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

    @classmethod
    def current(cls) -> Keys:
        return cls("{" + conf.KEY_PREFIX + "}:")

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

    def script_args(self) -> tuple[list[str], list[Any]]:
        keys = Keys.current()
        args: list[Any] = [
            SENT_MARKER_TTL,
            time.time(),
            conf.EARLY_FLUSH_THRESHOLD,
            int(conf.EARLY_FLUSH_INTERVAL * 1000),
            len(self.counts),
            len(self.counters),
            self.shipment_id,  # the epoch, if this is the first shipment into an empty Redis
        ]
        for counter in (self.counts, self.counters):
            for pair in counter.items():
                args += pair
        args += self.raw
        return [
            keys.pending,
            keys.dims,
            keys.events,
            keys.sent(self.shipment_id),
            keys.oldest,
            keys.counters,
            keys.early,
            keys.epoch,
            keys.top,
        ], args


@dataclass
class Claim:
    batch_id: str
    counts: dict[str, int]
    raw_events: list[RawEvent]  # one per view (packing.unpack)
    mark: tuple[str, int] | None = None  # (epoch, claim sequence number), for redis/restore.py


def parse_mark(mark: str | None) -> tuple[str, int] | None:
    if not mark:
        return None
    epoch, _, seq = mark.rpartition(":")
    return epoch, int(seq)


# The last claim mark (epoch, claim sequence number) this process saw in each buffer
# (Redis URL and key prefix): a Redis whose sequence falls below it within the same epoch
# went back in time, and claims nothing until redis/restore.py has looked at it.
_seen: dict[tuple[str, str], tuple[str, int]] = {}


def saw_mark(epoch: str, seq: int) -> None:
    _seen[(redis_url(), Keys.current().prefix)] = (epoch, seq)


def claim(client: Any, size: int) -> str | None:
    """Atomically take up to ``size`` count fields and raw events; the batch id or None."""
    from .scripts import claim as claim_script

    keys = Keys.current()
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
    saw_mark(*mark)
    return batch_id


def read_claim(client: Any, batch_id: str) -> Claim:
    keys = Keys.current()
    return read_chunks(client, keys.chunk(batch_id), keys.evchunk(batch_id), batch_id)


def read_chunks(client: Any, chunk: str, evchunk: str, batch_id: str) -> Claim:
    """A batch's counts and raw events, stored under the keys ``chunk`` and ``evchunk``."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(chunk)
        read_elements(pipe, evchunk)
        pipe.hget(Keys.current().claimmarks, batch_id)
        counts, elements, mark = pipe.execute()
    return Claim(
        batch_id, {f: int(n) for f, n in counts.items()}, unpack_all(elements), parse_mark(mark)
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

    keys = Keys.current()
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


def mark_failed(client: Any, batch_id: str) -> None:
    """Remember a claim the database could not write (an outage): the next drain retries
    it before claiming more. Not remembered on a full (or failing) Redis: the next drain
    then claims on, and cleanup writes this claim in time."""
    from redis.exceptions import RedisError

    try:
        client.zadd(Keys.current().failed, {batch_id: time.time()})
    except RedisError:
        stats.incr(stats.REDIS_ERROR)
        logger.warning("Redis did not take the mark of page-view batch %s.", batch_id)


def failed_claims(client: Any) -> list[str]:
    """The claims the database failed to write and still open, oldest first (those
    finished meanwhile, by cleanup, are forgotten)."""
    keys = Keys.current()
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


def forget_failed(client: Any, batch_id: str) -> None:
    client.zrem(Keys.current().failed, batch_id)


def claims_older_than(client: Any, seconds: float) -> list[str]:
    ids: list[str] = client.zrangebyscore(Keys.current().claims, "-inf", time.time() - seconds)
    return ids


def status(client: Any, count_raw_events: bool = True) -> dict[str, Any]:
    """The buffer's state, in one round trip (and, with ``count_raw_events``, one script
    that walks the raw-event list: the metrics, read at every scrape, leave it out, so
    that a scrape costs Redis the same whatever the backlog)."""
    keys = Keys.current()
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
        (total, fields, events, oldest_claim, n_claims, oldest, counters, aside, restored) = (
            pipe.execute()
        )
    now = time.time()
    counters = {k: int(v) for k, v in counters.items()}
    views, ms = counters.get("last_flush_views", 0), counters.get("last_flush_ms", 0)
    return {
        "pending_views": int(total or 0),
        "pending_count_fields": fields,
        "pending_raw_events": (
            (count_views(client, keys.events) if events else 0) if count_raw_events else None
        ),
        "claimed_batches": n_claims,
        "batches_set_aside": aside,
        "restored_groups": restored,
        "oldest_claim_age_seconds": round(now - oldest_claim[0][1], 3) if oldest_claim else None,
        "oldest_pending_age_seconds": round(now - float(oldest), 3) if oldest else None,
        "last_flush_rate_views_per_second": round(views * 1000 / ms) if ms else None,
        "counters": counters,
    }


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
