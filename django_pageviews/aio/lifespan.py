"""An ASGI wrapper that gives Django's handler the lifespan protocol it lacks.

Django's ASGIHandler refuses ``lifespan`` scopes, so servers never tell it they are
stopping. Wrapped, a lifespan-aware server's graceful shutdown (uvicorn, hypercorn,
granian: SIGTERM, Ctrl-C) flushes the buffered views before the process exits; daphne
sends no lifespan events, so there the interpreter-exit hook does it::

    from django.core.asgi import get_asgi_application
    from django_pageviews.aio.lifespan import PageViewsLifespan

    application = PageViewsLifespan(get_asgi_application())
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def shutdown() -> None:
    """Flush in a worker thread: the database writes must not run on the event loop."""
    from django_pageviews.shutdown import flush_all

    try:
        written = await asyncio.to_thread(flush_all)
    except Exception:  # the server must still be able to stop
        logger.exception("Flushing page views at shutdown failed.")
    else:
        logger.info("Wrote %d buffered page views at shutdown.", written)
