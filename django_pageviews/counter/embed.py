"""The address of a public counter, for the ``pageview_counter`` template tags."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import urlencode

from django.db.models import Model
from django.urls import NoReverseMatch, reverse

from django_pageviews.counter.optin import is_public
from django_pageviews.objects import model_label
from django_pageviews.params import SubjectName
from django_pageviews.reports import day_range
from django_pageviews.subjects import OBJECT, URL, Subject

URL_NAMES = {"svg": "pageviews:counter-svg", "json": "pageviews:counter-json"}


class NoCounter(ValueError):
    """No counter URL can be made: a bad argument, or the URLs are not installed."""


class NotPublic(NoCounter):
    """The target is not opted in by PAGEVIEW_PUBLIC_COUNTERS."""


def counter_url(
    target: Model | str, since: date | datetime | None = None, kind: str = "svg"
) -> str:
    """The counter's path for an object or a URL path; NoCounter when it has none.

    A datetime ``since`` (a DateTimeField: ``since=article.published``) counts from the
    site's day of that moment: the counter takes days, and refuses a timestamp."""
    if kind not in URL_NAMES:
        raise NoCounter(f"format must be 'svg' or 'json', not {kind!r}")
    if isinstance(target, Model):
        if target.pk is None:
            raise NoCounter("an unsaved object has no counter")
        name = SubjectName(OBJECT, model=type(target), pk=str(target.pk))
        query = {"model": model_label(type(target)), "pk": str(target.pk)}
    else:
        url = Subject.for_url(str(target)).url
        name, query = SubjectName(URL, url=url), {"url": url}
    if not is_public(name):
        raise NotPublic(
            f"{name.scope!r} is not opted in: add a pattern or model label that matches it "
            "to PAGEVIEW_PUBLIC_COUNTERS"
        )
    first, _ = day_range(start_date=since)
    if first is not None:
        query["since"] = first.isoformat()
    try:
        path = reverse(URL_NAMES[kind])
    except NoReverseMatch:
        raise NoCounter(
            "the counter's URLs are not installed: add "
            "path('pageviews/', include('django_pageviews.urls')) to the URLconf"
        ) from None
    return f"{path}?{urlencode(query)}"
