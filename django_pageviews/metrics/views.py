"""The scrape endpoint: the collector's metrics in Prometheus's text format."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from django_pageviews.params import RequestError
from django_pageviews.responses import error_answer

from .access import check_access
from .collector import exposition


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponseBase:
    """Refused (401, 403) before anything is read; a store that does not answer leaves
    its figures out and is counted (figures.py), never a 500."""
    try:
        check_access(request)
    except RequestError as error:
        return error_answer(error)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
