"""The state and steps the thread and asyncio batchers share: they keep only their I/O.

The state: a bounded local queue, the shipment waiting for a retry, the circuit breaker
and the fallback.

Only the waiting and the Redis call differ between the two, so they live in the
subclasses; everything here is plain, non-blocking bookkeeping.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from django_pageviews import stats
from django_pageviews.conf import conf
from django_pageviews.events import PageViewEvent

from .buffer import Shipment, shipped_to
from .shipping import Breaker, Fallback, build_shipment, never_sent

logger = logging.getLogger(__name__)


class BatcherCore:
    def __init__(self) -> None:
        self.queue: deque[PageViewEvent] = deque()
        self.breaker = Breaker()
        self.fallback = Fallback()
        self.retry: Shipment | None = None  # failed: resent with its id
        self.maybe_sent = False  # an attempt of ``retry`` may have reached Redis

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
        While the breaker is open, queued events go to the fallback instead, and so does a
        shipment Redis refused at every attempt (neither was ever in Redis, so that is
        safe); a shipment whose outcome is unknown waits for the breaker."""
        if not self.breaker.allows():
            if self.retry is not None and not self.maybe_sent:  # refused: never in Redis
                self.fallback.handle(self.retry.events, "redis_down")
                stats.give_back(self.retry.skipped)
                self.retry = None
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
        shipped_to(shipment)
        self.fallback.unreported -= shipment.counters
        stats.incr(stats.SHIPPED, len(shipment.events))
        _total, early = result
        return bool(early)

    def unknown(self, shipment: Shipment, exc: BaseException | None = None) -> None:
        """Keep a shipment that failed for a resend with its id, which Redis ignores if an
        earlier attempt did land. Whether one may have landed is remembered: at shutdown
        that decides between the fallback and settling it (``abandon``)."""
        if self.retry is not shipment:
            self.maybe_sent = False
        self.retry = shipment
        self.maybe_sent = self.maybe_sent or exc is None or not never_sent(exc)

    def no_client(self, work: Shipment | list[PageViewEvent], exc: BaseException) -> None:
        """No client could be made (a cluster client reads the slot map when it is made,
        and no node answered): the events taken go back first in line, a shipment to
        resend stays where it is, and the breaker opens, so that the next round hands
        the queue to the fallback. Nothing reached Redis."""
        if isinstance(work, list):
            self.put_back(work)
        self.breaker.failure()
        stats.incr(stats.REDIS_ERROR)
        if self.breaker.failures == 1:
            logger.warning("No Redis client for shipping page views: %s", exc)

    def failed(self, shipment: Shipment, exc: BaseException) -> None:
        self.unknown(shipment, exc)
        self.breaker.failure()
        stats.incr(stats.REDIS_ERROR)
        if self.breaker.failures == 1:
            logger.warning("Shipping page views to Redis failed: %s", exc)

    def abandon(self) -> Shipment | None:
        """At shutdown with Redis unreachable: queued events (never sent) go to the
        fallback, and so does a shipment Redis refused at every attempt. A shipment whose
        outcome is unknown is returned for the caller to settle (``unsettled.settle``):
        spilled as well it would count twice if it did reach Redis."""
        unsettled, self.retry = self.retry, None
        if unsettled is not None and not self.maybe_sent:  # refused every time: never sent
            self.fallback.handle(unsettled.events, "redis_down")
            stats.give_back(unsettled.skipped)
            unsettled = None
        self.fallback.handle(self._take(len(self.queue)), "redis_down")
        return unsettled


EARLY_FLUSH_TASK = "django_pageviews.tasks.process_pageview_buffer"


def request_early_flush() -> None:
    """Ask a Celery worker to drain now; failures are logged, never raised. The task is
    sent by name (the site's routes apply to it as to any): the buffer layer does not
    import the tasks, which import the layers above it."""
    try:
        from celery import current_app

        current_app.send_task(EARLY_FLUSH_TASK)
    except Exception:
        stats.incr(stats.EARLY_FLUSH_ERROR)
        logger.exception("Could not send the early page-view flush task.")
