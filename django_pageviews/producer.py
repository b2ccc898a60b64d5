"""What the sync and asyncio batchers share: building a shipment, the circuit breaker,
and where views go when Redis cannot take them."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

from . import stats
from .buffer import buffer
from .conf import conf
from .events import PageViewEvent, Target, local_day
from .privacy import with_visitor_hashes
from .redis_buffer import Shipment
from .toplists import list_entries
from .wire import count_field, dimensions, encode_event, skipped_field

logger = logging.getLogger(__name__)

BACKOFF = (0.25, 30.0)  # first and longest wait before trying a failing Redis again
WARNING_INTERVAL = 60.0


def build_shipment(events: Sequence[PageViewEvent], counters: Counter[str]) -> Shipment:
    """Pre-aggregate a micro-batch: Redis then does one increment per distinct page.

    The shipment also takes this process's unsaved skip counts (given back by whoever
    cannot deliver it)."""
    events = with_visitor_hashes(events)
    skipped = stats.take_unsaved()
    counts: Counter[str] = Counter({skipped_field(d, r): n for (d, r), n in skipped.items()})
    targets: Counter[Target] = Counter()
    for e in events:
        counts[count_field(local_day(e.timestamp), e.target)] += 1
        targets[e.target] += 1
    dims: Counter[str] = Counter()
    for target, n in targets.items():
        for d in dimensions(target):
            dims[d] += n
    raw = [encode_event(e) for e in events] if conf.STORE_RAW else []
    lists = list_entries(counts.items())  # toplists.py: reads by day stay bounded
    return Shipment(counts, dims, raw, events, counters.copy(), skipped, lists=lists)


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
        self._last_warning = 0.0
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
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL:
            self._last_warning = now
            logger.warning(
                "Page views not shipped to Redis (%s): %s %d views.",
                reason,
                "spilling to the database path" if conf.REDIS_FALLBACK == "spill" else "dropping",
                len(events),
            )
