"""Move claimed batches from Redis into the database, exactly once.

claim (atomic, in Redis) -> write (one DB transaction, batch id included) -> ack (atomic,
in Redis). A flusher killed anywhere leaves either an unclaimed view, a claim whose batch
id is not in the database (replayed by cleanup), or one whose id is (acknowledged by
cleanup). No lock is held while the database works.

A database that cannot write (down, read-only, locked, full) is waited out: the claim
stays, however many times it fails, and nothing is set aside for it. The next drain
writes it first and claims nothing new until it could: however long the outage, each
drain that runs into it leaves at most the one claim it was writing. A batch refused for
its data is written in parts around the record at fault (redis/splitting.py).

While a backlog lasts, several claims are written in one transaction (up to
PAGEVIEW_DRAIN_TRANSACTION_SIZE records), each under its own batch id, and acknowledged
together after the commit: a flusher killed in between leaves claims whose ids are in the
database, which cleanup acknowledges one by one. A group refused for its data is written
again claim by claim, through the same splitting as a claim alone.

With PAGEVIEW_BUFFER_SHARDS above 1 each shard is drained in turn as above, and cleanup
visits each (decision 42): a claim belongs to its shard, and carries its keys.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.cluster import RedisCluster

from django_pageviews import stats
from django_pageviews.conf import conf
from django_pageviews.db_errors import is_data_error
from django_pageviews.ledger import WRITTEN, batch_states
from django_pageviews.storage import trim_old_rows, write_group

from .buffer import (
    Claim,
    Keys,
    ack,
    claim,
    claims_older_than,
    failed_claims,
    forget_failed,
    mark_failed,
    read_claim,
    record_flush,
    shard_count,
)
from .client import get_client
from .restore import check_restored
from .splitting import contents, store

logger = logging.getLogger(__name__)


@dataclass
class DrainResult:
    batches: int = 0
    views: int = 0
    seconds: float = 0.0
    failed: int = 0


def drain_redis(
    time_budget: float | None, progress: Callable[[int, int], None] | None = None
) -> DrainResult:
    """Claim and write BATCH_SIZE chunks until Redis is empty or ``time_budget`` is spent:
    each shard in turn (decision 42), from a shard drawn at random, so that drains
    running at once start apart."""
    client = get_client()
    result = DrainResult()
    started = time.monotonic()
    shards = conf.BUFFER_SHARDS
    first = random.randrange(shards) if shards > 1 else 0
    order = [(first + n) % shards for n in range(shards)]
    visited = 0
    failure: Exception | None = None
    while visited < len(order) and (visited == 0 or _within(started, time_budget)):
        keys = Keys.shard(order[visited])
        visited += 1
        try:
            registry, stop = _drain_shard(client, keys, result, started, time_budget, progress)
        except Exception as exc:
            if len(order) == 1:
                raise
            # This shard could not be claimed from (its primary failing over, say): the
            # others are drained all the same, and the error is raised at the end.
            logger.warning("Draining page-view shard %d failed: %s", keys.number, exc)
            failure = failure or exc
            continue
        # Shard 0 read the registry: shards a producer shipped to beyond the setting's
        # (the setting was lowered) are drained too.
        order += range(len(order), shard_count(registry))
        if stop:
            break
    result.seconds = time.monotonic() - started
    if result.batches:
        record_flush(client, result.views, result.seconds)
    if failure is not None:
        raise failure
    return result


def _within(started: float, time_budget: float | None) -> bool:
    return time_budget is None or time.monotonic() - started < time_budget


def _drain_shard(
    client: Any,
    keys: Keys,
    result: DrainResult,
    started: float,
    time_budget: float | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[str | None, bool]:
    """Drain one shard into ``result``: (the registry if read, True when the database
    failed and the drain must stop)."""
    # A Redis restored from an old snapshot: not drained twice. Shard 0's check reads the
    # registry in the same round trip.
    _, registry = check_restored(client, keys)
    retry = failed_claims(client, keys)  # left by drains that met an outage: written first
    # The first claim of a drain is written alone: during an outage, each drain then
    # leaves one claim. Once the database took one, claims are grouped while a backlog
    # lasts (each full claim says there is more).
    grouping = False
    while _within(started, time_budget):
        retried = len(retry)
        taken: list[str] = []
        try:
            size = conf.DRAIN_TRANSACTION_SIZE if grouping else 0
            claims = _take(client, keys, retry, size, taken)
            if not claims:
                break
            retried -= len(retry)
            states = batch_states(c.batch_id for c in claims[:retried]) if retried else {}
            result.views += write_claims(client, claims, states)
        except Exception:
            if not taken:
                raise  # claiming failed: nothing is held
            # The database cannot write now. The claims stay, for the next drain (or
            # cleanup) to retry; claiming more meanwhile would only move views around.
            result.failed += 1
            for batch_id in taken:
                _failed(batch_id)
                mark_failed(client, batch_id, keys)
            return registry, True
        for c in claims[:retried]:
            forget_failed(client, c.batch_id, keys)
        result.batches += len(claims)
        grouping = _full(claims[-1])
        if progress is not None:
            progress(result.batches, result.views)
    return registry, False


def _take(client: object, keys: Keys, retry: list[str], size: int, taken: list[str]) -> list[Claim]:
    """The claims of a shard to write in one transaction: the claims left failed first
    (taken off ``retry``), then new ones; more than one while they hold under ``size``
    records together and each new one is full. Each id goes to ``taken`` as soon as it
    is held."""
    claims: list[Claim] = []
    records = 0
    while not claims or records + conf.BATCH_SIZE <= size:
        batch_id = retry.pop(0) if retry else claim(client, conf.BATCH_SIZE, keys)
        if batch_id is None:
            break
        taken.append(batch_id)
        claims.append(read_claim(client, batch_id, keys))
        records += len(claims[-1].counts) + len(claims[-1].raw_events)
        if not retry and not _full(claims[-1]):
            break  # the shard is empty (for now)
    return claims


def _full(batch: Claim) -> bool:
    return max(len(batch.counts), len(batch.raw_events)) >= conf.BATCH_SIZE


def write_claims(client: Any, claims: Sequence[Claim], states: Mapping[str, str]) -> int:
    """Write claims (skipped if already written) and acknowledge them; the views written.
    Those not begun before (no ``states``) are written together, in one transaction
    (storage.write_group); if the database refuses that for its data, one by one, so that
    redis/splitting.py isolates the record at fault as it would in a claim of its own."""
    begun = [c for c in claims if c.batch_id in states]
    written = sum(write_claim(client, c, states[c.batch_id]) for c in begun)
    fresh = [c for c in claims if c.batch_id not in states]
    if len(fresh) <= 1:
        return written + sum(write_claim(client, c) for c in fresh)
    try:
        views = write_group([contents(c) for c in fresh])
    except Exception as exc:
        if not is_data_error(exc):
            raise  # an outage: every claim stays, to be retried
        logger.warning(
            "The database refused a group of %d page-view batches (%s: %.200s); writing "
            "them one by one.",
            len(fresh),
            type(exc).__name__,
            exc,
        )
        return written + sum(write_claim(client, c) for c in fresh)
    stats.incr(stats.WRITTEN, sum(views))  # committed, whatever the acknowledgements meet
    # One round trip for the group's acknowledgements; a flusher killed before it leaves
    # claims whose ids are in the database, which cleanup acknowledges.
    _ack_all(client, fresh)
    return written + sum(views)


def _ack_all(client: Any, claims: list[Claim]) -> None:
    """``ack`` each claim: in one pipeline, or one by one on a cluster, whose pipelines
    refuse scripts (redis-py's cluster pipeline blocks EVALSHA)."""
    if isinstance(client, RedisCluster):
        for c in claims:
            ack(client, c)
        return
    with client.pipeline(transaction=False) as pipe:
        for c in claims:
            ack(pipe, c)
        pipe.execute()


def write_claim(client: object, batch: Claim, state: str | None = None) -> int:
    """Write one claimed batch (skipped if already written) and acknowledge it."""
    written = store(client, batch, state)
    stats.incr(stats.WRITTEN, written)  # committed, whatever the acknowledgement meets
    ack(client, batch)
    return written


def _failed(batch_id: str) -> None:
    stats.incr(stats.FLUSH_ERROR)
    logger.exception(
        "Writing page-view batch %s failed; it stays claimed, and is retried until the "
        "database takes it.",
        batch_id,
    )


@dataclass
class CleanupResult:
    replayed: int = 0
    acknowledged: int = 0
    trimmed: int = 0
    failed: int = 0


def cleanup(stale_after: float | None = None) -> CleanupResult:
    """Finish the claims of flushers that died, and trim old batch ids."""
    client = get_client()
    result = CleanupResult()
    seconds = conf.BUFFER_TIMEOUT if stale_after is None else stale_after
    shards = conf.BUFFER_SHARDS
    number = 0
    while number < shards and not result.failed:
        keys = Keys.shard(number)
        if number == 0:  # with the registry, in the same round trip
            with client.pipeline(transaction=False) as pipe:
                claims_older_than(pipe, seconds, keys)
                pipe.get(keys.registry)
                stale, registry = pipe.execute()
            shards = shard_count(registry)
        else:
            stale = claims_older_than(client, seconds, keys)
        _finish_stale(client, keys, stale, result)
        number += 1
    from .unsettled import reconcile  # shipments of unknown outcome kept at shutdown

    reconcile(client)
    if not result.failed:  # else the database cannot write: trimming would fail too
        try:
            result.trimmed = trim_old_rows()
        except Exception:
            stats.incr(stats.FLUSH_ERROR)
            logger.exception("Trimming old page-view batch ids failed; tried again next time.")
    return result


def _finish_stale(client: Any, keys: Keys, stale: list[str], result: CleanupResult) -> None:
    """Acknowledge or replay a shard's stale claims; stop at the first the database
    cannot write (the others would fail alike)."""
    states = batch_states(stale)
    for batch_id in stale:
        batch = read_claim(client, batch_id, keys)
        if states.get(batch_id) == WRITTEN:
            result.acknowledged += ack(client, batch)
            continue
        try:
            write_claim(client, batch, states.get(batch_id))
        except Exception:
            result.failed += 1
            _failed(batch_id)
            return
        result.replayed += 1
        logger.warning("Replayed page-view batch %s left by a stopped flusher.", batch_id)
