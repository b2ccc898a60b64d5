"""The ASGI lifespan protocol for Django's handler: write buffered views before exit.

Django's ASGIHandler refuses ``lifespan`` scopes, so servers never tell it they are
stopping, and several of them end the process in a way that skips ``atexit`` (uvicorn
re-raises SIGTERM with the default handler; hypercorn and granian workers are
multiprocessing children, which leave through ``os._exit``). The app therefore teaches
Django's handler this protocol itself (``aio/handler.py``): a plain
``get_asgi_application()`` needs nothing more. The server's graceful shutdown then runs
:func:`shutdown` after it has finished the requests in flight.

``PageViewsLifespan`` is the same protocol as an explicit wrapper, kept for sites that
already use it (or that route ``lifespan`` scopes elsewhere)::

    from django.core.asgi import get_asgi_application
    from django_pageviews.aio.lifespan import PageViewsLifespan

    application = PageViewsLifespan(get_asgi_application())

Wrapped, the lifespan scope stops at the wrapper and never reaches the handler: one
flush, not two (and a second would find nothing to write).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django_pageviews import stats

from . import sigterm

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


class PageViewsLifespan:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await serve_lifespan(receive, send)


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer one ``lifespan`` scope: nothing to start; at shutdown, write the views."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            sigterm.guard()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            sigterm.release()
            try:
                await shutdown()
            finally:
                sigterm.restore()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def shutdown() -> None:
    """Ship this loop's batcher to Redis and close its client (async mode), then write
    the in-process buffer in a worker thread: database writes must not run on the loop.
    Each step runs even if the one before failed; the server must still be able to stop
    (a database that stays down is retried for a bounded time, see ``shutdown.py``).
    """
    from django_pageviews.conf import conf
    from django_pageviews.shutdown import flush_before_exit, log_exit, shipped_so_far

    shipped_before = shipped_so_far()
    if conf.ASYNC_PROCESSING:
        from .batcher import aclose as close_batcher
        from .client import aclose as close_client

        try:
            await close_batcher()  # what Redis refuses now goes to the fallback
        except Exception:
            stats.incr(stats.REDIS_ERROR)
            logger.exception("Shipping page views to Redis at shutdown failed.")
        try:
            await close_client()
        except Exception:
            stats.incr(stats.REDIS_ERROR)
            logger.exception("Closing the Redis client at shutdown failed.")
    try:
        written = await asyncio.to_thread(flush_before_exit)
    except Exception:
        stats.incr(stats.FLUSH_ERROR)
        logger.exception("Flushing page views at shutdown failed.")
    else:
        log_exit("at shutdown", shipped_before, written, always=True)
