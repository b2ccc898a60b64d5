"""What the original django-pageviews 0.2.6 did per view, as benchmark baselines (0.2.6 is
not on PyPI here): the throughput scenario runs them in the same harness as the package.

``SyncInsertMiddleware``: its in-process mode, a synchronous middleware (Django runs it
in a thread under ASGI) that throttles through the session (``request.session[...] =
now``: a session row written per new visitor) and INSERTs one PageView row per view.
``CeleryMessageMiddleware``: its async mode, the same session throttle and one Celery
message per view (``buffer_page_view.delay``), consumed by a worker.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from django_pageviews.models import PageView
from django_pageviews.tasks import buffer_page_view

THROTTLE_SECONDS = 20


def _first_view(request: HttpRequest) -> bool:
    key = f"pageview_{request.path}"
    now = time.time()
    last = request.session.get(key)
    if last is not None and now - float(last) < THROTTLE_SECONDS:
        return False
    request.session[key] = now
    return True


def _is_view(request: HttpRequest, response: HttpResponseBase) -> bool:
    return request.method == "GET" and response.status_code == 200


class SyncInsertMiddleware(MiddlewareMixin):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _is_view(request, response) and _first_view(request):
            PageView.objects.create(
                url=request.path,
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                session_key=request.session.session_key,
            )
        return response


class CeleryMessageMiddleware(MiddlewareMixin):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _is_view(request, response) and _first_view(request):
            buffer_page_view.delay(
                request.path,
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        return response
