"""Counts are by path; only allow-listed query parameters are kept; a scanner cannot
blow up the daily table."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_pageviews.models import PageView, PageViewDaily, SkippedDaily
from django_pageviews.recorder import flush
from django_pageviews.stats import URL_OVERFLOW
from django_pageviews.url_cap import OVERFLOW_URL
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)


def test_query_strings_are_dropped_by_default() -> None:
    wsgi_get("/plain/?utm_source=x&session=secret")
    flush()
    assert PageView.objects.get().url == "/plain/"


@override_settings(PAGEVIEW_TRACK_QUERY_STRING=["page", "q"])
def test_allow_listed_parameters_are_kept_in_one_order() -> None:
    visitors = distinct_visitors(4)
    wsgi_get("/plain/?utm_source=x&q=shoes&page=2", **visitors[0])
    wsgi_get("/plain/?page=2&q=shoes", **visitors[1])
    wsgi_get("/plain/?utm_source=y", **visitors[2])
    # Thousands of parameters: no TooManyFieldsSent; past 2,000 characters they are ignored.
    many = "&".join(f"k{i}=v" for i in range(5000))
    wsgi_get(f"/plain/?page=3&{many}&q=ignored", **visitors[3])
    assert PageView.get_view_count(url="/plain/?page=2&q=shoes") == 2
    assert PageView.get_view_count(url="/plain/") == 1
    assert PageView.get_view_count(url="/plain/?page=3") == 1
    flush()
    assert PageView.get_view_count(url="/plain/?page=2&q=shoes") == 2


@override_settings(PAGEVIEW_MAX_NEW_URLS_PER_DAY=3, PAGEVIEW_THROTTLE_SECONDS=0)
def test_new_urls_past_the_daily_cap_share_one_bucket() -> None:
    asgi_requests([("GET", f"/pages/{i}/", {}) for i in range(5)])
    assert flush() == 5
    assert sorted(PageViewDaily.objects.values_list("url", "views")) == [
        (OVERFLOW_URL, 2),
        ("/pages/0/", 1),
        ("/pages/1/", 1),
        ("/pages/2/", 1),
    ]
    assert list(SkippedDaily.objects.values_list("reason", "requests")) == [(URL_OVERFLOW, 2)]
    assert PageView.objects.count() == 5  # raw rows keep the real URLs
    # A URL already counted today still counts on its own row.
    asgi_requests([("GET", "/pages/0/", {}), ("GET", "/pages/9/", {})])
    flush()
    assert PageView.get_view_count(url="/pages/0/") == 2
    assert PageView.get_view_count(url=OVERFLOW_URL) == 3
    assert PageView.get_view_count() == 7
