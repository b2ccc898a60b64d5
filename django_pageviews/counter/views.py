"""The public counter: the views of an opted-in URL or object, as JSON or an SVG badge.

Meant for pages served from a CDN or a page cache, which still want to show "1.2K views":
the page embeds the badge (``{% pageview_counter %}``) and the CDN keeps the badge for
``PAGEVIEW_COUNTER_MAX_AGE`` seconds (``Cache-Control: public``), so that the site counts
once per interval however many people look. Anything not opted in answers 404, the same
404 as an object that does not exist: no count leaks, not even whether there is one.
"""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_safe

from django_pageviews.conf import conf
from django_pageviews.counter.badge import badge
from django_pageviews.counter.optin import is_public
from django_pageviews.numbers import format_number
from django_pageviews.params import Params, RequestError, not_found, resolve, subject_name
from django_pageviews.responses import cached, error_answer, json_answer
from django_pageviews.subjects import Subject

PARAMS = ("url", "model", "pk", "since")
SVG_TYPE = "image/svg+xml; charset=utf-8"
# Opened on its own, the image may run no script and load nothing.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
# Any origin may read a public count (a static site fetching the JSON).
CORS_HEADER = "Access-Control-Allow-Origin"


def _count(request: HttpRequest) -> tuple[Subject, date | None, int]:
    """The subject, the ``since`` day and the count. 400 for bad parameters; 404 for
    anything not opted in, an unknown model or a missing object alike."""
    params = Params(request, PARAMS)
    since = params.day("since")
    try:
        name = subject_name(params, with_view=False)
        if not is_public(name):
            raise not_found()
        subject = resolve(name)
    except RequestError as error:
        raise not_found() if error.status == 404 else error from None
    return subject, since, subject.total(since=since)


@require_safe
def counter_json(request: HttpRequest) -> HttpResponseBase:
    try:
        subject, since, views = _count(request)
    except RequestError as error:
        return error_answer(error)
    data = {
        "subject": subject.describe(),
        "since": since.isoformat() if since else None,
        "views": views,
        "display": str(format_number(views)),
    }
    response = json_answer(request, data, conf.COUNTER_MAX_AGE, public=True)
    response[CORS_HEADER] = "*"
    return response


@require_safe
def counter_svg(request: HttpRequest) -> HttpResponseBase:
    try:
        _, since, views = _count(request)
    except RequestError as error:
        return error_answer(error)
    response = HttpResponse(badge(views, since), content_type=SVG_TYPE)
    response["Content-Security-Policy"] = SVG_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    return cached(request, response, conf.COUNTER_MAX_AGE, public=True)
