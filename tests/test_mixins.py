"""PageViewMixin on models and on the three kinds of class-based views."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path
from django.utils import timezone
from django.views import View

from django_pageviews import stats
from django_pageviews.middleware import MIDDLEWARE_PATH
from django_pageviews.mixins import PageViewMixin
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)


class BrokenLookup(PageViewMixin, View):
    """get_object() meets a real database error: a query on a table that does not exist."""

    def get_object(self) -> Article:
        return list(Article.objects.raw("SELECT * FROM pageviews_no_such_table"))[0]

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("fine")


class MissingObject(PageViewMixin, View):
    def get_object(self) -> Article:
        return Article.objects.get(slug="nope")  # Article.DoesNotExist

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("fine")


urlpatterns = [
    path("broken/", BrokenLookup.as_view(), name="broken"),
    path("missing/", MissingObject.as_view(), name="missing"),
]

WITHOUT_MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]


def test_model_mixin(pipeline: str) -> None:
    a = Article.objects.create(title="A", slug="a")
    b = Article.objects.create(title="B", slug="b")
    visitors = distinct_visitors(3)
    asgi_requests([("GET", f"/articles/{a.pk}/", h) for h in visitors])
    asgi_requests([("GET", f"/articles/{b.pk}/", visitors[0])])
    assert a.view_count == 3
    flush()
    assert a.view_count == 3
    assert a.unique_view_count == 3
    assert b.unique_view_count == 1
    today = timezone.localdate()
    assert a.daily_views(days=2) == {today - timedelta(days=1): 0, today: 3}
    assert Article.get_popular(limit=5) == [(a, 3), (b, 1)]
    assert Article.get_popular(limit=1, days=1) == [(a, 3)]


def test_unique_views_count_a_returning_visitor_once() -> None:
    a = Article.objects.create(title="A", slug="a")
    with override_settings(PAGEVIEW_THROTTLE_SECONDS=0):
        asgi_requests([("GET", f"/articles/{a.pk}/", distinct_visitors(1)[0])] * 4)
    flush()
    assert (a.view_count, a.unique_view_count) == (4, 1)


@pytest.mark.parametrize("middleware", ["installed", "absent"])
@pytest.mark.parametrize(
    "path, expected",
    [
        ("/mixin/articles/{a}/", "a"),  # DetailView: self.object, no extra query
        ("/mixin/articles/", "a"),  # ListView: the first object of the queryset
        ("/mixin/by-slug/b/", "b"),  # View: get_object()
    ],
)
def test_view_mixin_records_once(middleware: str, path: str, expected: str) -> None:
    a = Article.objects.create(title="A", slug="a")
    b = Article.objects.create(title="B", slug="b")
    target = {"a": a, "b": b}[expected]
    url = path.format(a=a.pk)
    middlewares = settings.MIDDLEWARE if middleware == "installed" else WITHOUT_MIDDLEWARE
    with override_settings(MIDDLEWARE=middlewares):
        for headers in distinct_visitors(2):
            assert wsgi_get(url, **headers).status_code == 200
        asgi_requests([("GET", url, distinct_visitors(3)[2])])
    assert PageView.get_view_count(obj=target) == 3
    flush()
    assert PageView.objects.count() == 3
    assert PageView.get_view_count(obj=target) == 3
    assert PageView.get_view_count(url=url) == 3


def test_view_mixin_with_an_unknown_object_counts_the_url_only() -> None:
    with override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE):
        assert wsgi_get("/mixin/by-slug/nope/").status_code == 200  # get_object() raises 404
    flush()
    row = PageView.objects.get()
    assert (row.url, row.content_type_id, row.object_id) == ("/mixin/by-slug/nope/", None, None)


@pytest.mark.parametrize("middleware", ["installed", "absent"])
def test_a_database_error_in_get_object_is_logged_and_counted(
    middleware: str, caplog: pytest.LogCaptureFixture
) -> None:
    middlewares = settings.MIDDLEWARE if middleware == "installed" else WITHOUT_MIDDLEWARE
    errors = stats.snapshot().get(stats.SKIP_ERROR, 0)
    with override_settings(MIDDLEWARE=middlewares, ROOT_URLCONF=__name__):
        assert wsgi_get("/broken/").status_code == 200
        assert asgi_requests([("GET", "/broken/", {})])[0].status_code == 200
    assert stats.snapshot().get(stats.SKIP_ERROR, 0) - errors == 2
    failures = [
        r for r in caplog.records if "Finding the object BrokenLookup shows failed" in r.message
    ]
    assert len(failures) == 2 and all(r.exc_info for r in failures)
    flush()
    assert PageView.get_view_count(url="/broken/") == 1  # the page still counts (throttled once)


def test_a_missing_object_is_nothing_to_track_silently(caplog: pytest.LogCaptureFixture) -> None:
    errors = stats.snapshot().get(stats.SKIP_ERROR, 0)
    with override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE, ROOT_URLCONF=__name__):
        assert wsgi_get("/missing/").status_code == 200
    assert stats.snapshot().get(stats.SKIP_ERROR, 0) == errors
    assert not [r for r in caplog.records if r.levelno >= 30]
    flush()
    assert PageView.get_view_count(url="/missing/") == 1
