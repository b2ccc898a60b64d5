"""The one way to write buffered views now: ``django_pageviews.flush`` and its callers.

``flush()`` is the public function. The ``pageviews_flush`` command and the process's
shutdown (``shutdown.py``, the ASGI lifespan, ``atexit``) go through ``flush_report``,
which does the same steps and says more about how they went; the older names
(``recorder.flush``, ``shutdown.flush_all``) call it too. ``buffer.flush`` is the
in-process writer's own step, not an entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .buffer import buffer
from .conf import conf

if TYPE_CHECKING:
    from .redis.drain import DrainResult


@dataclass(frozen=True)
class Flushed:
    local: int  # views the in-process buffer wrote
    drained: DrainResult | None  # the drain of Redis (async mode, not at exit)
    local_error: BaseException | None  # the in-process buffer's last failed write, if any

    @property
    def written(self) -> int:
        """Views written to the database, from Redis and from this process."""
        return self.local + (self.drained.views if self.drained is not None else 0)


def flush() -> int:
    """Write what this process holds to the database now; the number of views written.

    In async mode this also ships this process's sync batcher, settles the shipments of
    unknown outcome kept at a shutdown (``redis/unsettled.py``) and drains Redis (the same work
    a ``process_pageview_buffer`` task does), raising if Redis or the database fails
    while draining. The in-process buffer never raises: a batch that fails to write is
    logged and stays buffered for the next flush. Asyncio batchers are shipped by their
    loop's shutdown.
    """
    return flush_report().written


def flush_report(
    *,
    time_budget: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    at_exit: bool = False,
) -> Flushed:
    """``flush``, with the drain's ``time_budget`` and ``progress`` (see ``drain_redis``)
    and what each part did. ``at_exit``: the process is leaving, so what Redis refuses
    goes to the fallback at once, and Redis is left to the Celery workers (a drain could
    outlast the time a stopping process is given)."""
    drained = None
    if conf.ASYNC_PROCESSING:
        from .redis.sync_batcher import batcher

        batcher.ship_all(give_up=at_exit)
        if not at_exit:
            from .redis.client import get_client
            from .redis.drain import drain_redis
            from .redis.unsettled import reconcile

            reconcile(get_client())
            drained = drain_redis(time_budget=time_budget, progress=progress)
    local = buffer.flush()
    return Flushed(local, drained, buffer.last_error)
