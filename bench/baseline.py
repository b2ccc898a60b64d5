"""What the original django-pageviews 0.2.6 did per view, as benchmark baselines (0.2.6 is
not on PyPI here): the throughput scenario runs them in the same harness as the package.

``SyncInsertMiddleware``: its in-process mode, a synchronous middleware (Django runs it
in a thread under ASGI) that throttles through the session (``request.session[...] =
now``: a session row written per new visitor) and INSERTs one PageView row per view.
``CeleryMessageMiddleware``: its async mode, the same session throttle and one Celery
message per view (``buffer_page_view``), sent to a queue of its own that no worker of the
benchmark consumes: what is measured is the web process's cost, and the package's drain
running meanwhile is not slowed by the baseline's work (the queue is emptied after each
run).
``RedisListMiddleware``: its async mode as bench/memory.py and bench/scaling.py run it
without Celery: the same session throttle, then what its ``buffer_page_view`` task did
with the view (bench/original.py: one LPUSH of one JSON object, and an LLEN), done in the
web process. The Celery message that carried the view to a worker, and that worker's
task dispatch, are left out: its cost is a lower bound of 0.2.6's.
``COUNTS``: the views each baseline INSERTed or pushed in this process (bench/webproc.py
reports them, and scaling.py waits for the drain to write the pushed ones).

Importable without Django set up (throughput.py reads ``QUEUE``): the model is looked up
when Django builds the middleware, and the task is sent by name.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from celery import current_app
from django.apps import apps
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from django_pageviews.schedules import BUFFER_TASK

THROTTLE_SECONDS = 20
QUEUE = "bench-baseline-views"
COUNTS: Counter[str] = Counter()


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
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        super().__init__(get_response)
        self.page_view = apps.get_model("django_pageviews", "PageView")

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _is_view(request, response) and _first_view(request):
            self.page_view.objects.create(
                url=request.path,
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                session_key=request.session.session_key,
            )
            COUNTS["inserted"] += 1
        return response


class CeleryMessageMiddleware(MiddlewareMixin):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _is_view(request, response) and _first_view(request):
            current_app.send_task(
                BUFFER_TASK,
                (request.path,),
                {
                    "ip_address": request.META.get("REMOTE_ADDR"),
                    "user_agent": request.META.get("HTTP_USER_AGENT", ""),
                },
                queue=QUEUE,
            )
        return response


class RedisListMiddleware(MiddlewareMixin):
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        from bench import original

        super().__init__(get_response)
        self.original = original
        self.client = original.connect()

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if _is_view(request, response) and _first_view(request):
            match = request.resolver_match
            sent = {
                "url": request.path,
                "view_name": match.view_name if match else None,
                "content_type_id": None,  # the benchmark's pages are of no object
                "object_id": None,
                "ip_address": request.META.get("REMOTE_ADDR"),
                "user_agent": request.META.get("HTTP_USER_AGENT", ""),
                "session_key": request.session.session_key,
            }
            self.original.push(self.client, self.original.encode(sent))
            COUNTS["pushed"] += 1
        return response
