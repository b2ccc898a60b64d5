"""Shipments whose outcome is unknown at shutdown: counted exactly once, never lost.

A shipment whose Redis reply timed out may have landed. Written to the database as well
it would count twice; dropped it might be lost. So at shutdown a batcher resends it with
its shipment id for a bounded time (SETTLE_SECONDS): the SHIP script adds it once per id
(its ``sent:<id>`` marker). If Redis stays unreachable, the shipment is kept in the
database (``UnsettledShipment``), and ``cleanup_old_buffer_data`` settles it later:

- the marker says the SHIP script ran: Redis has the views, its drain writes them; the
  record goes;
- no marker: ``SET NX`` puts one of our own (DB_MARKER), so a late copy can no longer
  land, and the views are written once under a batch id derived from the shipment id.

The marker lives in the shipment's shard (decision 42), which the record keeps (its
payload's ``shard``; none: shard 0, as before shards).

The bound: the marker lives SENT_MARKER_TTL seconds. A record settled later than that, or
after Redis restarted empty having already drained the shipment, may be counted twice
(logged and counted as ``unsettled_late``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from django_pageviews import stats
from django_pageviews.events import PageViewEvent
from django_pageviews.models import UnsettledShipment
from django_pageviews.wire import PendingFields, counts_views, decode_event, encode_event

from .buffer import SENT_MARKER_TTL, Keys, Shipment

logger = logging.getLogger(__name__)

SETTLE_SECONDS = 1.0  # how long a shutdown keeps resending a shipment of unknown outcome
RESEND_PAUSE = 0.1
DB_MARKER = "db"  # the sent marker's value when the views went to the database instead
BATCH_PREFIX = "unsettled:"  # + shipment id: the ProcessedBatch id of such a write
RECONCILE_LIMIT = 100  # records settled per cleanup run

# Process counters.
KEPT = "unsettled_kept"  # views of a shipment kept in the database at shutdown
LOST = "unsettled_lost"  # views of one that the database refused too (also "dropped")
LATE = "unsettled_late"  # views settled after the marker could have expired


def settle(client: Any, shipment: Shipment) -> Any:
    """At shutdown: resend ``shipment`` for up to SETTLE_SECONDS; the script's result, or
    None once the shipment is kept in the database (Redis never answered)."""
    from .scripts import ship

    keys, args = shipment.script_args()
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            return ship(keys=keys, args=args, client=client)
        except Exception:
            if time.monotonic() + RESEND_PAUSE >= deadline:
                break
            time.sleep(RESEND_PAUSE)
    keep(shipment)
    return None


async def asettle(client: Any, shipment: Shipment) -> Any:
    """``settle`` on a redis.asyncio client; the database write runs in a thread of its
    own (the loop's default executor may already be shut down at loop close)."""
    from .scripts import aship

    keys, args = shipment.script_args()
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            return await aship(keys=keys, args=args, client=client)
        except Exception:
            if time.monotonic() + RESEND_PAUSE >= deadline:
                break
            await asyncio.sleep(RESEND_PAUSE)
    await _in_a_thread(lambda: keep(shipment, close=True))
    return None


def _in_a_thread(func: Callable[[], None]) -> Awaitable[None]:
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pageviews-keep")
    try:
        return asyncio.get_running_loop().run_in_executor(executor, func)
    finally:
        executor.shutdown(wait=False)


def keep(shipment: Shipment, close: bool = False) -> None:
    """Store ``shipment`` as outcome unknown. If the database refuses, its views are lost
    (they may be in Redis): logged and counted."""
    views = _views(shipment.counts)
    # Raw events as one JSON text per event, as earlier versions kept them (the list
    # elements of redis/packing.py are binary).
    raw = [encode_event(e) for e in shipment.events] if shipment.raw else []
    payload: dict[str, Any] = {"counts": dict(shipment.counts), "raw": raw}
    if shipment.shard:
        payload["shard"] = shipment.shard  # where its marker is (none: shard 0)
    try:
        UnsettledShipment.objects.get_or_create(
            shipment_id=shipment.shipment_id,
            defaults={"payload": json.dumps(payload), "views": views},
        )
    except Exception:
        stats.incr(LOST, views)
        stats.incr(stats.DROPPED, views)
        logger.exception(
            "Redis and the database unreachable at shutdown: %d page views of shipment %s "
            "(which may have reached Redis) are lost.",
            views,
            shipment.shipment_id,
        )
        return
    finally:
        if close:
            connections.close_all()
    stats.incr(KEPT, views)
    logger.warning(
        "Redis unreachable at shutdown: %d page views of shipment %s, which may or may not "
        "have reached Redis, are kept in the database; cleanup counts them once.",
        views,
        shipment.shipment_id,
    )


def _views(counts: Counter[str] | dict[str, int]) -> int:
    return sum(n for f, n in counts.items() if counts_views(f))


@dataclass
class ReconcileResult:
    in_redis: int = 0  # shipments Redis had (its drain counts them)
    written: int = 0  # shipments written to the database here
    failed: int = 0


def reconcile(client: Any, limit: int = RECONCILE_LIMIT) -> ReconcileResult:
    """Settle the kept shipments (oldest first). Never raises: while Redis cannot be
    asked nothing can be decided, and the records wait for the next run."""
    result = ReconcileResult()
    late = timezone.now() - timedelta(seconds=SENT_MARKER_TTL)
    for record in UnsettledShipment.objects.order_by("created_at")[:limit]:
        marker = Keys.shard(_shard_of(record)).sent(record.shipment_id)
        try:
            ours = client.set(marker, DB_MARKER, nx=True, ex=SENT_MARKER_TTL)
            in_redis = not ours and client.get(marker) != DB_MARKER
        except Exception:  # Redis down or full: nothing can be decided until next time
            result.failed += 1
            stats.incr(stats.REDIS_ERROR)
            logger.exception("Settling unsettled shipments: Redis did not answer.")
            break
        if in_redis:
            result.in_redis += 1
            record.delete()
            continue
        try:
            _write(record)
        except Exception:  # one bad record must not keep the others from settling
            result.failed += 1
            stats.incr(stats.FLUSH_ERROR)
            logger.exception("Writing unsettled shipment %s failed.", record.shipment_id)
            continue
        if record.created_at < late:
            stats.incr(LATE, record.views)
            logger.warning(
                "Unsettled shipment %s was settled more than %d s after it was kept: if "
                "Redis had it, its %d views are counted twice.",
                record.shipment_id,
                SENT_MARKER_TTL,
                record.views,
            )
        result.written += 1
        record.delete()
    return result


def _shard_of(record: UnsettledShipment) -> int:
    """Where the record's marker is; shard 0 for a payload that cannot be read (whose
    write then fails, counted, in ``_write``)."""
    try:
        return int(json.loads(record.payload).get("shard", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def _write(record: UnsettledShipment) -> int:
    from django_pageviews.storage import write_batch

    payload = json.loads(record.payload)
    read = PendingFields()
    for field, n in payload["counts"].items():
        read.add(field, n)
    events: list[PageViewEvent] = [decode_event(raw) for raw in payload["raw"]]
    written = write_batch(
        BATCH_PREFIX + record.shipment_id, events, read.totals, read.skipped, read.visitors
    )
    stats.incr(stats.WRITTEN, written)
    return written
