"""The per-event-loop micro-batcher: the request only appends to a deque.

A background task per loop waits for the first event, lets a micro-batch gather for
PAGEVIEW_SHIP_INTERVAL (or until PAGEVIEW_SHIP_BATCH_SIZE events wait), and ships it
with one script call on the loop's redis.asyncio client. The event loop never waits on
Redis for a request; Redis being slow or down only changes where views go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from django_pageviews import salts
from django_pageviews.conf import conf
from django_pageviews.events import PageViewEvent
from django_pageviews.redis.batching import BatcherCore, request_early_flush
from django_pageviews.redis.throttle import afirst_views, redis_prefix
from django_pageviews.redis.unsettled import asettle

from .client import close_with_loop, get_client

logger = logging.getLogger(__name__)


class LoopBatcher(BatcherCore):
    def __init__(self) -> None:
        super().__init__()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, event: PageViewEvent) -> None:
        if self.offer(event):
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run())
            self._wakeup.set()

    async def ship_all(self, give_up: bool = False) -> None:
        client = get_client()
        prefix = redis_prefix()
        while True:
            # Salts only for views to hash: a shipper left retrying reads no database.
            loading = salts.refresh() if self.queue else None
            if loading is not None and not salts.usable():
                await asyncio.wrap_future(loading)
            work = self.next_work(final=give_up)
            if work is None:
                break
            if isinstance(work, list):
                try:
                    passed = await afirst_views(client, work, prefix)
                except asyncio.CancelledError:
                    # Redis may have set their keys already: checked again, they would
                    # all look like reloads. They count (at worst a reload twice).
                    self.put_back([e._replace(throttle_key="") for e in work])
                    raise
                shipment = self.package(passed)
                if shipment is None:
                    continue
            else:
                shipment = work
            keys, args = shipment.script_args()
            try:
                result: Any = await _ship(client, keys, args)
            except asyncio.CancelledError:
                self.unknown(shipment)  # outcome unknown: resent with its id at close
                raise
            except Exception as exc:  # Redis down, or anything else: retried, never lost
                if _cancelling():  # a cancellation redis-py turned into an error
                    self.unknown(shipment)
                    raise asyncio.CancelledError from exc
                self.failed(shipment, exc)
                break
            if self.shipped(shipment, result):
                await asyncio.to_thread(request_early_flush)
        if give_up:
            unsettled = self.abandon()
            if unsettled is not None:
                result = await asettle(client, unsettled)
                if result is not None:
                    self.shipped(unsettled, result)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if len(self.queue) < conf.SHIP_BATCH_SIZE:
                await asyncio.sleep(conf.SHIP_INTERVAL)  # gather a micro-batch
            try:
                await self.ship_all()
            except Exception:
                logger.exception("The page-view shipper failed; it keeps running.")
            if _cancelling():
                # A cancellation that redis-py absorbed (it can, inside its timeouts) must
                # still stop this task, or a loop shutdown would wait for it forever.
                raise asyncio.CancelledError
            if self.queue or self.retry is not None:
                await asyncio.sleep(max(conf.SHIP_INTERVAL, 0.05))
                self._wakeup.set()

    async def close(self) -> None:
        """Ship what is left (or hand it to the fallback) and stop the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.ship_all(give_up=True)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _ship(client: Any, keys: list[str], args: list[Any]) -> Any:
    from django_pageviews.redis.scripts import aship

    return await aship(keys=keys, args=args, client=client)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBatcher] = (
    weakref.WeakKeyDictionary()
)


def get_batcher() -> LoopBatcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = LoopBatcher()
        close_with_loop(loop)
    return batcher


async def aclose() -> None:
    """Drain and stop this loop's batcher (lifespan shutdown)."""
    batcher = _batchers.pop(asyncio.get_running_loop(), None)
    if batcher is not None:
        await batcher.close()
