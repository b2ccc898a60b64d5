"""PageViewMixin on models and on the three kinds of class-based views."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from django_pageviews.mixins import MIDDLEWARE_PATH
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

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
