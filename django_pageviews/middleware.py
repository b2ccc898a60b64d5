"""PageViewMiddleware: one class for WSGI and ASGI that never slows or breaks a response.

Under ASGI the async path runs on the event loop itself (no thread hop): deciding is pure
CPU work and handing the event over takes a lock held for microseconds. The one exception
is in-process mode with a shared cache, where the throttle asks the cache, through its
async API.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from . import stats
from .events import PageViewEvent
from .recorder import record
from .throttle import acache_allows, cache_allows
from .tracking import build_event

logger = logging.getLogger(__name__)

SyncGetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class PageViewMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: SyncGetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        response = cast(HttpResponseBase, self.get_response(request))
        track(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await cast(AsyncGetResponse, self.get_response)(request)
        await atrack(request, response)
        return response


def track(request: HttpRequest, response: HttpResponseBase) -> None:
    """Record the request if it is a page view. Never raises: errors are logged and counted."""
    try:
        admit(build_event(request, response))
    except Exception:
        _failed(request)


async def atrack(request: HttpRequest, response: HttpResponseBase) -> None:
    """``track`` on the event loop: the same, and a shared cache is asked asynchronously."""
    try:
        event = build_event(request, response)
        if event is not None and await acache_allows(event.throttle_key):
            record(event)
    except Exception:
        _failed(request)


def admit(event: PageViewEvent | None) -> None:
    """Record ``event`` unless another process counted the same visitor and page within
    the throttle window (in-process mode with a shared cache; see throttle.py)."""
    if event is not None and cache_allows(event.throttle_key):
        record(event)


def _failed(request: HttpRequest) -> None:
    stats.incr(stats.SKIP_ERROR)
    logger.exception("Page-view tracking failed for %s", request.path)


# How settings.MIDDLEWARE names it (checks, mixins).
MIDDLEWARE_PATH = f"{PageViewMiddleware.__module__}.{PageViewMiddleware.__qualname__}"
