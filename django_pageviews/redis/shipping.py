"""Building a shipment, the circuit breaker, and where views go that Redis cannot take."""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date

from redis.asyncio.sentinel import MasterNotFoundError as AsyncMasterNotFoundError
from redis.sentinel import MasterNotFoundError

from django_pageviews import stats
from django_pageviews.buffer import buffer
from django_pageviews.conf import conf
from django_pageviews.events import UNIT, PageViewEvent, Target, local_day
from django_pageviews.log_limit import LogLimit
from django_pageviews.privacy import with_visitor_hashes
from django_pageviews.visitors import of_events as visitors_of
from django_pageviews.wire import skipped_field, visitor_field

from .buffer import Shipment
from .packing import pack

logger = logging.getLogger(__name__)

OOM_REPLY = "command not allowed when used memory"  # a write refused by maxmemory
BACKOFF = (0.25, 30.0)  # first and longest wait before trying a failing Redis again


def build_shipment(
    events: Sequence[PageViewEvent], counters: Counter[str], take_skipped: bool = True
) -> Shipment:
    """Pre-aggregate a micro-batch: Redis then does one increment per distinct page (and
    derives its live totals and day lists: the SHIP script).

    The shipment also takes this process's unsaved skip counts (given back by whoever
    cannot deliver it), unless ``take_skipped`` is off: a shipment that may be dropped as
    a duplicate must carry nothing else."""
    events = with_visitor_hashes(events)
    skipped = stats.take_unsaved() if take_skipped else Counter()
    counts: Counter[str] = Counter({skipped_field(d, r): n for (d, r), n in skipped.items()})
    views: dict[tuple[date, Target], int] = {}
    for e in events:
        key = (local_day(e.timestamp), e.target)
        views[key] = views.get(key, 0) + 1
    days: dict[date, str] = {}
    for (day, target), n in views.items():
        iso = days.get(day) or days.setdefault(day, day.isoformat())
        field = UNIT.join((iso, *target))
        counts[field] = counts.get(field, 0) + n
    if conf.STORE_RAW:
        raw = pack(events)  # redis/packing.py: one element per shipment; hashes ride in events
    else:
        raw = []
        if conf.COUNT_VISITORS:  # no raw event carries the hash: one field per visitor
            for day, visitor_hash in visitors_of(events):
                counts[visitor_field(day, visitor_hash)] += 1
    return Shipment(counts, raw, events, counters.copy(), skipped)


def ship_once(event: PageViewEvent, shipment_id: str, marker_ttl: int) -> None:
    """Ship one event now as shipment ``shipment_id``, remembered by Redis for
    ``marker_ttl`` seconds: sent again within that time (a redelivered task), it is not
    added twice. Raises if Redis did not answer (the caller retries with the same id)."""
    from .batching import request_early_flush
    from .client import get_client
    from .scripts import ship

    shipment = build_shipment([event], Counter(), take_skipped=False)
    shipment.shipment_id = shipment_id
    # Shard 0 whatever the setting: a redelivery, in any process, finds its marker there.
    shipment.shard = 0
    keys, args = shipment.script_args()
    args[0] = marker_ttl  # the SHIP script's ARGV[1]: how long the sent marker lives
    total, early = ship(keys=keys, args=args, client=get_client())
    if total >= 0:
        stats.incr(stats.SHIPPED)
    if early:
        request_early_flush()


def never_sent(exc: BaseException) -> bool:
    """True when ``exc`` proves the shipment is not in Redis: the connection was refused
    or the host unknown (both only happen before anything is written), or a full Redis
    refused the script's first write (SHIP starts with a deny-oom SET; past the first
    write a script is never refused). A timeout, a reset or another error reply may come
    after Redis ran the script: outcome unknown. Behind Sentinel, "no primary found" comes
    before any connection to a primary is opened."""
    if OOM_REPLY in str(exc) or isinstance(exc, MasterNotFoundError | AsyncMasterNotFoundError):
        return True
    seen: BaseException | None = exc
    for _ in range(5):  # redis-py wraps the socket error once or twice
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError | socket.gaierror) or (
            isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Breaker:
    """Stop calling a failing Redis for a while, doubling the pause on each failure."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def allows(self) -> bool:
        return time.monotonic() >= self.retry_at

    def success(self) -> None:
        if self.failures:
            logger.info("Redis is reachable again; shipping page views to it.")
        self.failures = 0
        self.retry_at = 0.0

    def failure(self) -> None:
        self.failures += 1
        pause = min(BACKOFF[0] * 2 ** (self.failures - 1), BACKOFF[1])
        self.retry_at = time.monotonic() + pause


class Fallback:
    """Views Redis cannot take: spilled to the in-process database path or dropped, as
    PAGEVIEW_REDIS_FALLBACK says, each counted, with a warning at most once a minute."""

    def __init__(self) -> None:
        self._log = LogLimit()
        self.unreported: Counter[str] = Counter()  # shipped to Redis's counters later

    def handle(self, events: Sequence[PageViewEvent], reason: str) -> None:
        if not events:
            return
        if conf.REDIS_FALLBACK == "spill":
            name = f"spilled_{reason}"
            for event in events:
                buffer.add(event)
        else:
            name = f"dropped_{reason}"
            stats.incr(stats.DROPPED, len(events))
        stats.incr(name, len(events))
        self.unreported[name] += len(events)
        if self._log.due():
            logger.warning(
                "Page views not shipped to Redis (%s): %s %d views.",
                reason,
                "spilling to the database path" if conf.REDIS_FALLBACK == "spill" else "dropping",
                len(events),
            )
