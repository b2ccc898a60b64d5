"""Teach Django's ASGIHandler the lifespan protocol, so that a plain asgi.py loses nothing.

Why a patch: Django's ``ASGIHandler.__call__`` raises ValueError for a ``lifespan``
scope, so ASGI servers run without telling the application they stop. uvicorn then
re-raises SIGTERM with the default handler after its graceful shutdown, and hypercorn's
and granian's workers leave through ``os._exit``: ``atexit`` never runs, and whatever
the in-process buffer (or an asyncio batcher) held was lost at every deploy. Sites keep
the ``application = get_asgi_application()`` they have, and must not need to wrap it.

What it changes, and only that: a ``lifespan`` scope, which Django refuses today, is
answered (``startup.complete``; at shutdown, after the server has finished its requests,
the views are shipped and written, then ``shutdown.complete``). HTTP and WebSocket
scopes go to Django's own ``__call__`` untouched. Installed once from
``AppConfig.ready()``; installing again is a no-op.
"""

from __future__ import annotations

import functools
from typing import Any

from django.core.handlers.asgi import ASGIHandler

from .lifespan import Receive, Scope, Send, serve_lifespan

_MARK = "_pageviews_lifespan"


def install() -> None:
    original: Any = ASGIHandler.__call__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def __call__(self: ASGIHandler, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        await original(self, scope, receive, send)

    setattr(__call__, _MARK, True)
    ASGIHandler.__call__ = __call__  # type: ignore[method-assign]


def installed() -> bool:
    return bool(getattr(ASGIHandler.__call__, _MARK, False))
