"""The state shared by the thread and the asyncio batchers: a bounded local queue, the
shipment waiting for a retry, the circuit breaker and the fallback.

Only the waiting and the Redis call differ between the two, so they live in the
subclasses; everything here is plain, non-blocking bookkeeping.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from . import stats
from .conf import conf
from .events import PageViewEvent
from .producer import Breaker, Fallback, build_shipment
from .redis_buffer import Shipment

logger = logging.getLogger(__name__)


class BatcherCore:
    def __init__(self) -> None:
        self.queue: deque[PageViewEvent] = deque()
        self.breaker = Breaker()
        self.fallback = Fallback()
        self.retry: Shipment | None = None  # sent, outcome unknown: resent with its id

    def discard(self) -> None:
        """Forget everything queued and the breaker's state (tests, operators)."""
        self.queue.clear()
        self.retry = None
        self.breaker = Breaker()

    def offer(self, event: PageViewEvent) -> bool:
        """Queue an event; True when the shipping side should wake up."""
        if len(self.queue) >= conf.LOCAL_QUEUE_SIZE:
            self.fallback.handle([event], "overflow")
            return False
        self.queue.append(event)
        return len(self.queue) == 1 or len(self.queue) >= conf.SHIP_BATCH_SIZE

    def next_work(self, final: bool = False) -> Shipment | list[PageViewEvent] | None:
        """The shipment to resend, else the next events to check against the throttle and
        package, else None. At shutdown (``final``), skip counts go even with no view (an
        empty list); otherwise they ride with views, or the in-process writer saves them.
        While the breaker is open, queued events go to the fallback instead (they were
        never sent, so that is safe)."""
        if not self.breaker.allows():
            self.fallback.handle(self._take(len(self.queue)), "redis_down")
            return None
        if self.retry is not None:
            return self.retry
        events = self._take(conf.SHIP_BATCH_SIZE)
        if events:
            return events
        return [] if final and stats.unsaved_age() is not None else None

    def package(self, events: list[PageViewEvent]) -> Shipment | None:
        """The shipment of events the throttle let through, or None if it holds nothing."""
        shipment = build_shipment(events, self.fallback.unreported)
        return shipment if shipment.counts or shipment.counters else None

    def put_back(self, events: list[PageViewEvent]) -> None:
        """Events taken but not shipped (the shipper was cancelled): first in line again."""
        self.queue.extendleft(reversed(events))

    def _take(self, n: int) -> list[PageViewEvent]:
        return [self.queue.popleft() for _ in range(min(n, len(self.queue)))]

    def shipped(self, shipment: Shipment, result: Any) -> bool:
        """Record success; True when this shipment crossed the early-flush threshold."""
        self.retry = None
        self.breaker.success()
        self.fallback.unreported -= shipment.counters
        stats.incr(stats.SHIPPED, len(shipment.events))
        _total, early = result
        return bool(early)

    def failed(self, shipment: Shipment, exc: BaseException) -> None:
        # The script may or may not have run: keep the shipment and resend it with the
        # same id, which Redis ignores if the first attempt did land.
        self.retry = shipment
        self.breaker.failure()
        stats.incr(stats.REDIS_ERROR)
        if self.breaker.failures == 1:
            logger.warning("Shipping page views to Redis failed: %s", exc)

    def abandon(self) -> None:
        """At shutdown with Redis unreachable: what is left goes to the fallback. A retried
        shipment might have reached Redis after all; that is logged."""
        if self.retry is not None:
            logger.warning(
                "Redis unreachable at shutdown: %d views (and the skip counts) of a "
                "shipment whose outcome is unknown go to the fallback.",
                len(self.retry.events),
            )
            self.fallback.handle(self.retry.events, "redis_down")
            stats.give_back(self.retry.skipped)
            self.retry = None
        self.fallback.handle(self._take(len(self.queue)), "redis_down")


def request_early_flush() -> None:
    """Ask a Celery worker to drain now; failures are logged, never raised."""
    try:
        from .tasks import process_pageview_buffer

        process_pageview_buffer.apply_async()
    except Exception:
        stats.incr(stats.EARLY_FLUSH_ERROR)
        logger.exception("Could not send the early page-view flush task.")
