"""A worker that leaves SIGTERM at its default (as hypercorn's do) gets a SIGTERM of its
own, and no lifespan shutdown follows: it must still write its views, then die by SIGTERM.

Run as ``python -m tests.chaos.restart_lone_worker N``: serves N views through Django's
plain handler, starts a lifespan that is never told to shut down, signals itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import django
import httpx

GRACE_SECONDS = 0.5


async def main(views: int) -> None:
    from django.core.handlers.asgi import ASGIHandler

    from django_pageviews.aio import sigterm
    from django_pageviews.aio.lifespan import ASGIApp
    from tests.conftest import distinct_visitors

    sigterm.GRACE_SECONDS = GRACE_SECONDS
    app: ASGIApp = ASGIHandler()
    started = asyncio.Event()
    never = asyncio.get_running_loop().create_future()
    messages = iter([{"type": "lifespan.startup"}])

    async def receive() -> Any:
        return next(messages, None) or await never

    async def send(message: Any) -> None:
        started.set()

    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
    await started.wait()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for headers in distinct_visitors(views):
            assert (await c.get("/plain/", headers=headers)).status_code == 200
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(60)  # the process ends by SIGTERM before this
    lifespan.cancel()


if __name__ == "__main__":
    os.environ["PAGEVIEW_MAX_BUFFER_AGE"] = "3600"  # nothing written before the signal
    django.setup()
    asyncio.run(main(int(sys.argv[1])))
