"""The batcher for WSGI and sync code: a thread ships micro-batches with the sync client."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django_pageviews import forks, salts
from django_pageviews.conf import conf
from django_pageviews.events import PageViewEvent
from django_pageviews.privacy import with_visitor_hashes
from django_pageviews.redis.throttle import first_views, redis_prefix

from .batching import BatcherCore, request_early_flush
from .client import get_client
from .unsettled import keep, settle

logger = logging.getLogger(__name__)


class ThreadBatcher(BatcherCore):
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        BatcherCore.__init__(self)
        self._lock = threading.Lock()
        self._shipping = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, event: PageViewEvent) -> None:
        forks.check()
        with self._lock:
            wake = self.offer(event)
        if wake:
            self._ensure_thread()
            self._wakeup.set()

    def discard(self) -> None:
        """Forget what is queued, after any shipment in flight has landed."""
        with self._shipping, self._lock:
            super().discard()

    @contextmanager
    def holding(self) -> Iterator[list[PageViewEvent]]:
        """The events queued and never sent, with shipping held off while the caller
        reads Redis (a shipment awaiting a retry may have landed: it is left out rather
        than risk counting it twice)."""
        with self._shipping:
            with self._lock:
                events = list(self.queue)
            yield events

    def ship_all(self, give_up: bool = False) -> None:
        """Ship everything queued now; with ``give_up``, what Redis refuses goes to the
        fallback instead of waiting for a retry (shutdown)."""
        # One shipper at a time (the thread, or a caller flushing): two failing at once
        # would each set the retry slot, and the first shipment would be forgotten.
        with self._shipping:
            self._ship_all(give_up)

    def _ship_all(self, give_up: bool) -> None:
        client: Any = None  # asked for only when there is work: settings may be changing
        while True:
            # Salts only for views to hash: a shipper left retrying reads no database.
            loading = salts.refresh() if self.queue else None
            if loading is not None and not salts.usable():
                loading.result()
            with self._lock:
                work = self.next_work(final=give_up)
            if work is None:
                break
            if client is None:
                try:
                    client = get_client()
                except Exception as exc:  # a cluster client that found no node to ask
                    with self._lock:
                        self.no_client(work, exc)
                    if give_up:
                        continue  # the open breaker hands what is queued to the fallback
                    break
            if isinstance(work, list):
                passed = with_visitor_hashes(first_views(client, work, redis_prefix()))
                with self._lock:
                    shipment = self.package(passed)
                if shipment is None:
                    continue
            else:
                shipment = work
            keys, args = shipment.script_args()
            try:
                result: Any = _ship(client, keys, args)
            except Exception as exc:  # Redis down, or anything else: retried, never lost
                with self._lock:
                    self.failed(shipment, exc)
                break
            with self._lock:
                early = self.shipped(shipment, result)
            if early:
                request_early_flush()
        if give_up:
            with self._lock:
                unsettled = self.abandon()
            if unsettled is not None and client is None:
                keep(unsettled)  # no client to resend it with: kept in the database
            elif unsettled is not None:
                result = settle(client, unsettled)
                if result is not None:
                    with self._lock:
                        self.shipped(unsettled, result)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pageviews-shipper", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            if len(self.queue) < conf.SHIP_BATCH_SIZE:
                self._wakeup.wait(conf.SHIP_INTERVAL)  # gather a micro-batch
                self._wakeup.clear()
            try:
                self.ship_all()
            except Exception:
                logger.exception("The page-view shipper failed; it keeps running.")
            if self.queue or self.retry is not None:
                self._wakeup.wait(max(conf.SHIP_INTERVAL, 0.05))
                self._wakeup.set()


def _ship(client: Any, keys: list[str], args: list[Any]) -> Any:
    from .scripts import ship

    return ship(keys=keys, args=args, client=client)


batcher = ThreadBatcher()
# A forked child starts empty: the parent ships what it had queued.
forks.after_fork(batcher._reset)
