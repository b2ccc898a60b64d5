"""The read-only stats API: daily series, totals and most-viewed lists, as JSON.

Every answer comes from the package's read API (live: stored totals plus views still
pending), is refused without a permission or a token (access.py), and may be kept by the
client for ``PAGEVIEW_API_MAX_AGE`` seconds (private: never by a shared cache).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.http import require_safe

from django_pageviews import reports
from django_pageviews.api.access import grant_for, require
from django_pageviews.api.tokens import TOP, Grant
from django_pageviews.conf import conf
from django_pageviews.objects import model_label
from django_pageviews.params import (
    MAX_DAYS,
    MAX_LIMIT,
    MODEL_PARAM_MAX_LENGTH,
    SUBJECT_PARAMS,
    Params,
    RequestError,
    bad_request,
    installed_model,
    resolve,
    subject_name,
)
from django_pageviews.responses import error_answer, json_answer

DEFAULT_DAYS = 30  # of a daily series
DEFAULT_LIMIT = 10  # of a most-viewed list

Endpoint = Callable[[HttpRequest, Grant], dict[str, Any]]


def endpoint(view: Endpoint) -> Callable[[HttpRequest], HttpResponseBase]:
    """GET or HEAD only; the caller is authenticated before anything else is looked at,
    so that nobody without access learns even which parameters are wrong."""

    @require_safe
    @wraps(view)
    def answer(request: HttpRequest) -> HttpResponseBase:
        try:
            data = view(request, grant_for(request))
        except RequestError as error:
            return error_answer(error)
        return json_answer(request, data, conf.API_MAX_AGE, public=False)

    return answer


@endpoint
def daily(request: HttpRequest, grant: Grant) -> dict[str, Any]:
    """``?url=`` (or ``model`` and ``pk``, or ``view``) ``&days=30``: views per day."""
    params = Params(request, (*SUBJECT_PARAMS, "days"))
    name = subject_name(params)
    days = params.integer("days", DEFAULT_DAYS, MAX_DAYS)
    assert days is not None
    require(grant, name.scope)
    subject = resolve(name)
    by_day = subject.daily(days)
    return {
        "subject": subject.describe(),
        "days": days,
        "total": sum(by_day.values()),
        "daily": [{"day": day.isoformat(), "views": n} for day, n in by_day.items()],
    }


@endpoint
def total(request: HttpRequest, grant: Grant) -> dict[str, Any]:
    """Views of one subject: all time, ``days=N`` (the last N days) or ``since=YYYY-MM-DD``."""
    params = Params(request, (*SUBJECT_PARAMS, "days", "since"))
    name = subject_name(params)
    days = params.integer("days", None, MAX_DAYS)
    since = params.day("since")
    if days is not None and since is not None:
        raise bad_request("Give 'days' or 'since', not both.")
    require(grant, name.scope)
    subject = resolve(name)
    return {
        "subject": subject.describe(),
        "days": days,
        "since": since.isoformat() if since else None,
        "views": subject.total(since=since, days=days),
    }


def _period(request: HttpRequest, grant: Grant, *extra: str) -> tuple[Params, int, int | None]:
    """The parameters of a most-viewed list: its length and period (None: all time)."""
    params = Params(request, ("limit", "days", *extra))
    limit = params.integer("limit", DEFAULT_LIMIT, MAX_LIMIT)
    days = params.integer("days", None, MAX_DAYS)
    assert limit is not None
    require(grant, TOP)
    return params, limit, days


@endpoint
def top_pages(request: HttpRequest, grant: Grant) -> dict[str, Any]:
    _, limit, days = _period(request, grant)
    ranked = reports.get_popular_urls(limit=limit, days=days)
    return {
        "days": days,
        "limit": limit,
        "results": [{"url": url, "views": n} for url, n in ranked],
    }


@endpoint
def top_views(request: HttpRequest, grant: Grant) -> dict[str, Any]:
    _, limit, days = _period(request, grant)
    ranked = reports.get_popular_view_names(limit=limit, days=days)
    return {
        "days": days,
        "limit": limit,
        "results": [{"view": name, "views": n} for name, n in ranked],
    }


@endpoint
def top_objects(request: HttpRequest, grant: Grant) -> dict[str, Any]:
    """``?model=app_label.model``: the most viewed objects of that model."""
    params, limit, days = _period(request, grant, "model")
    label = params.text("model", MODEL_PARAM_MAX_LENGTH)
    if label is None:
        raise bad_request("Parameter 'model' is required.")
    model = installed_model(label)
    ranked = reports.get_popular_objects(model, limit=limit, days=days)
    return {
        "model": model_label(model),
        "days": days,
        "limit": limit,
        "results": [{"pk": str(obj.pk), "label": str(obj), "views": n} for obj, n in ranked],
    }
