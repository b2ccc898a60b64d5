"""Where an event goes once the request decided it is a view.

``recorder.flush`` is the path ``django_pageviews.flush`` had before it was public; it is
that function (``flushing.py``), kept for code that imports it from here.
"""

from __future__ import annotations

import asyncio

from .buffer import buffer
from .conf import conf
from .events import PageViewEvent
from .flushing import flush

__all__ = ["flush", "record"]


def record(event: PageViewEvent) -> None:
    """Hand ``event`` to the configured pipeline. Never blocks on I/O: a request (or a
    view counting by hand) never waits on Redis or the database here."""
    if not conf.ASYNC_PROCESSING:
        buffer.add(event)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from .redis.sync_batcher import batcher

        batcher.submit(event)
    else:
        from .aio.batcher import get_batcher

        get_batcher().submit(event)
