from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

from django_pageviews.buffer import buffer
from django_pageviews.throttle import throttle

BASE_URL = "http://testserver"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def _fresh_pipeline() -> Iterator[None]:
    """Each test starts with an empty buffer and throttle table."""
    buffer.discard()
    throttle.clear()
    yield
    buffer.discard()


Request = tuple[str, str, dict[str, str]]  # method, path, headers


def asgi_requests(requests: Sequence[Request]) -> list[httpx.Response]:
    """Send all requests concurrently through Django's real ASGI application.

    The handler is built directly: ``get_asgi_application()`` would run ``django.setup()``
    again, and its logging set-up would detach pytest's log capture.
    """
    app = ASGIHandler()

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return list(
                await asyncio.gather(*(client.request(m, p, headers=h) for m, p, h in requests))
            )

    return asyncio.run(run())


def asgi_get(path: str, **headers: str) -> httpx.Response:
    headers.setdefault("user-agent", BROWSER_UA)
    return asgi_requests([("GET", path, headers)])[0]


def wsgi_request(method: str, path: str, **headers: str) -> httpx.Response:
    """One request through Django's real WSGI application."""
    headers.setdefault("user-agent", BROWSER_UA)
    transport = httpx.WSGITransport(app=WSGIHandler())
    with httpx.Client(transport=transport, base_url=BASE_URL) as client:
        return client.request(method, path, headers=headers)


def wsgi_get(path: str, **headers: str) -> httpx.Response:
    return wsgi_request("GET", path, **headers)


def distinct_visitors(n: int) -> list[dict[str, Any]]:
    """Headers of ``n`` different visitors (the visitor hash includes the user agent)."""
    return [{"user-agent": f"{BROWSER_UA} visitor/{i}"} for i in range(n)]
