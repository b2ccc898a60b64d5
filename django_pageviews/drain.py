"""Move claimed batches from Redis into the database, exactly once.

claim (atomic, in Redis) -> write (one DB transaction, batch id included) -> ack (atomic,
in Redis). A flusher killed anywhere leaves either an unclaimed view, a claim whose batch
id is not in the database (replayed by cleanup), or one whose id is (acknowledged by
cleanup). No lock is held while the database works.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from . import stats
from .conf import conf
from .events import PageViewEvent, Target, current_day
from .models import ProcessedBatch
from .redis_buffer import (
    Claim,
    ack,
    claim,
    claims_older_than,
    failed_attempt,
    forget_attempts,
    read_claim,
    record_flush,
)
from .redis_client import get_client
from .restore import park_restored
from .storage import trim_old_rows, write_batch
from .wire import decode_event, parse_count_field, parse_skipped_field

logger = logging.getLogger(__name__)

SET_ASIDE = "set_aside"


# A claimed batch whose write fails this many times is set aside, not retried forever.
MAX_ATTEMPTS = 5


@dataclass
class DrainResult:
    batches: int = 0
    views: int = 0
    seconds: float = 0.0
    failed: int = 0


def drain_redis(
    time_budget: float | None, progress: Callable[[int, int], None] | None = None
) -> DrainResult:
    """Claim and write BATCH_SIZE chunks until Redis is empty or ``time_budget`` is spent."""
    client = get_client()
    result = DrainResult()
    started = time.monotonic()
    park_restored(client)  # a Redis restored from an old snapshot: not drained twice
    while time_budget is None or time.monotonic() - started < time_budget:
        batch_id = claim(client, conf.BATCH_SIZE)
        if batch_id is None:
            break
        try:
            result.views += write_claim(client, read_claim(client, batch_id))
        except Exception:
            # The claim stays for cleanup_old_buffer_data to retry (or set aside); while
            # the database fails, claiming more would only move views around.
            result.failed += 1
            _failed(client, batch_id)
            break
        result.batches += 1
        if progress is not None:
            progress(result.batches, result.views)
    result.seconds = time.monotonic() - started
    if result.batches:
        record_flush(client, result.views, result.seconds)
    return result


def write_claim(client: object, batch: Claim) -> int:
    """Write one claimed batch (skipped if already written) and acknowledge it."""
    totals: Counter[tuple[date, Target]] = Counter()
    skipped: Counter[tuple[date, str]] = Counter()
    for field, n in batch.counts.items():
        try:
            if (day_reason := parse_skipped_field(field)) is not None:
                skipped[day_reason] += n
            else:
                totals[parse_count_field(field)] += n
        except (ValueError, TypeError):
            skipped[(current_day(), stats.SKIP_INVALID)] += _poison(field, n)
    events: list[PageViewEvent] = []
    for raw in batch.raw_events:
        try:
            events.append(decode_event(raw))
        except (ValueError, TypeError):
            skipped[(current_day(), stats.SKIP_INVALID)] += _poison(raw)
    written = write_batch(batch.batch_id, events, totals, skipped, claim_mark=batch.mark)
    ack(client, batch)
    stats.incr(stats.WRITTEN, written)
    return written


def _failed(client: Any, batch_id: str) -> None:
    stats.incr(stats.FLUSH_ERROR)
    attempts = failed_attempt(client, batch_id)
    logger.exception("Writing page-view batch %s failed (attempt %d).", batch_id, attempts)
    if attempts >= MAX_ATTEMPTS:
        ack(client, read_claim(client, batch_id), set_aside=True)
        forget_attempts(client, batch_id)
        stats.incr(SET_ASIDE)
        logger.error(
            "Page-view batch %s failed %d times and is set aside under the 'aside:' keys.",
            batch_id,
            attempts,
        )


def _poison(record: str, views: int = 1) -> int:
    # A record that cannot be read is skipped (counted with its batch, logged), never
    # retried forever.
    stats.incr(stats.SKIP_INVALID, views)
    logger.error("Skipping an unreadable page-view record: %.200r", record)
    return views


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
    stale = claims_older_than(client, conf.BUFFER_TIMEOUT if stale_after is None else stale_after)
    done = set(ProcessedBatch.objects.filter(batch_id__in=stale).values_list("batch_id", flat=True))
    for batch_id in stale:
        batch = read_claim(client, batch_id)
        if batch_id in done:
            result.acknowledged += ack(client, batch)
            continue
        try:
            write_claim(client, batch)
        except Exception:  # one bad batch must not keep the others from recovery
            result.failed += 1
            _failed(client, batch_id)
            continue
        forget_attempts(client, batch_id)
        result.replayed += 1
        logger.warning("Replayed page-view batch %s left by a stopped flusher.", batch_id)
    from .unsettled import reconcile  # shipments of unknown outcome kept at shutdown

    reconcile(client)
    result.trimmed = trim_old_rows()
    return result
