"""Where an event goes once the request decided it is a view, and how to flush."""

from __future__ import annotations

import asyncio

from .buffer import buffer
from .conf import conf
from .events import PageViewEvent


def record(event: PageViewEvent) -> None:
    """Hand ``event`` to the configured pipeline. Never blocks on I/O: a request (or a
    view counting by hand) never waits on Redis or the database here."""
    if not conf.ASYNC_PROCESSING:
        buffer.add(event)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from .sync_batcher import batcher

        batcher.submit(event)
    else:
        from .aio.batcher import get_batcher

        get_batcher().submit(event)


def flush() -> int:
    """Write what this process holds to the database now; the number of views written.

    In async mode this also ships this process's sync batcher, settles the shipments of
    unknown outcome kept at a shutdown (``unsettled.py``) and drains Redis (the same work
    a ``process_pageview_buffer`` task does). Asyncio batchers are shipped by their
    loop's shutdown.
    """
    written = 0
    if conf.ASYNC_PROCESSING:
        from .drain import drain_redis
        from .redis_client import get_client
        from .sync_batcher import batcher
        from .unsettled import reconcile

        batcher.ship_all()
        reconcile(get_client())
        written += drain_redis(time_budget=None).views
    return written + buffer.flush()
