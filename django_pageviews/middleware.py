"""PageViewMiddleware: one class for WSGI and ASGI that never slows or breaks a response.

Under ASGI the async path runs on the event loop itself (no thread hop): deciding is pure
CPU work and handing the event over takes a lock held for microseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from . import stats
from .recorder import record
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
        track(request, response)
        return response


def track(request: HttpRequest, response: HttpResponseBase) -> None:
    """Record the request if it is a page view. Never raises: errors are logged and counted."""
    try:
        event = build_event(request, response)
        if event is not None:
            record(event)
    except Exception:
        stats.incr(stats.SKIP_ERROR)
        logger.exception("Page-view tracking failed for %s", request.path)
