"""One redis.asyncio client per running event loop.

An asyncio connection belongs to the loop that opened it, so each loop (uvicorn workers,
tests opening several loops) gets its own client on first use. Clients are closed by
``aclose_all()`` (lifespan shutdown) or, as a safety net, when their loop closes.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from django_pageviews.redis.client import make_client

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def get_client() -> Any:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = make_client(asyncio=True)
        close_with_loop(loop)
    return client


async def aclose() -> None:
    """Close this loop's client, if it has one."""
    await _close_client(asyncio.get_running_loop())


_hooked: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def close_with_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Before the loop closes, ship its batcher's views and close its client (the safety
    net for loops that end without a lifespan shutdown, such as ``asyncio.run``)."""
    if loop in _hooked:
        return
    _hooked.add(loop)
    original_close = loop.close

    def close() -> None:
        from .batcher import aclose as close_batcher

        if not loop.is_running() and not loop.is_closed():
            loop.run_until_complete(close_batcher())
            loop.run_until_complete(_close_client(loop))
        original_close()

    loop.close = close  # type: ignore[method-assign]


async def _close_client(loop: asyncio.AbstractEventLoop) -> None:
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose()
