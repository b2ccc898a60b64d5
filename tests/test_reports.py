"""The 0.2.x read API over days, on both pipelines, before and after the flush."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import asgi_requests, distinct_visitors, run_async, wsgi_get
from tests.models import Article, Document

pytestmark = pytest.mark.django_db(transaction=True)


def visit(path: str, n: int, first_visitor: int = 0) -> None:
    visitors = distinct_visitors(first_visitor + n)[first_visitor:]
    asgi_requests([("GET", path, h) for h in visitors])


@pytest.fixture
def articles() -> list[Article]:
    return [Article.objects.create(title=f"T{i}", slug=f"s{i}") for i in range(4)]


@pytest.mark.parametrize("flushed", [False, True], ids=["pending", "flushed"])
def test_period_daily_and_popular(pipeline: str, articles: list[Article], flushed: bool) -> None:
    a, b, c, d = articles
    visit(f"/articles/{a.pk}/", 3)
    visit(f"/by-slug/{b.slug}/", 5)  # named by slug: resolved by the writer
    visit(f"/articles/{c.pk}/", 1)
    visit("/async/", 2)
    d.delete()  # a deleted object never shows up
    if flushed:
        assert flush() == 11
    today = timezone.localdate()

    assert PageView.get_views_by_period(b, days=1) == 5
    assert PageView.get_views_by_period(b, days=7) == 5
    assert PageView.get_views_by_period(b) == 5
    assert PageView.get_views_by_period(b, start_date=today, end_date=today) == 5
    yesterday = today - timedelta(days=1)
    assert PageView.get_views_by_period(b, start_date=yesterday, end_date=yesterday) == 0

    daily = PageView.get_daily_views(a, days=3)
    assert list(daily) == [today - timedelta(days=2), today - timedelta(days=1), today]
    assert list(daily.values()) == [0, 0, 3]

    assert PageView.get_popular_objects(Article, limit=2) == [(b, 5), (a, 3)]
    assert PageView.get_popular_objects(Article, limit=5, days=7) == [(b, 5), (a, 3), (c, 1)]
    assert PageView.get_popular_urls(limit=2) == [
        (f"/by-slug/{b.slug}/", 5),
        (f"/articles/{a.pk}/", 3),
    ]
    assert PageView.get_popular_view_names(limit=3) == [
        ("article-slug", 5),
        ("article-detail", 4),
        ("async-page", 2),
    ]


def test_popular_objects_ranks_pending_with_stored(pipeline: str, articles: list[Article]) -> None:
    a, b, _, _ = articles
    visit(f"/articles/{a.pk}/", 4)
    flush()
    visit(f"/articles/{b.pk}/", 3)
    visit(f"/articles/{b.pk}/", 2, first_visitor=3)  # still pending: b overtakes a
    assert PageView.get_popular_objects(Article, limit=1) == [(b, 5)]
    assert PageView.get_popular_objects(Article, limit=2, select_related=[]) == [(b, 5), (a, 4)]


def test_uuid_objects_by_custom_slug(pipeline: str) -> None:
    doc = Document.objects.create(code="Z-9")
    visit("/docs/Z-9/", 2)
    assert PageView.get_popular_objects(Document) == [(doc, 2)]
    assert PageView.get_daily_views(doc, days=1) == {timezone.localdate(): 2}
    flush()
    assert PageView.get_popular_objects(Document) == [(doc, 2)]


def test_async_twins(pipeline: str, articles: list[Article]) -> None:

    a = articles[0]
    visit(f"/articles/{a.pk}/", 2)

    async def read() -> tuple[object, ...]:
        return (
            await PageView.aget_views_by_period(a, days=1),
            await PageView.aget_daily_views(a, days=1),
            await PageView.aget_popular_objects(Article, limit=1),
            await PageView.aget_popular_urls(limit=1),
            await PageView.aget_popular_view_names(limit=1),
        )

    assert run_async(read) == (
        2,
        {timezone.localdate(): 2},
        [(a, 2)],
        [(f"/articles/{a.pk}/", 2)],
        [("article-detail", 2)],
    )


@override_settings(PAGEVIEW_THROTTLE_SECONDS=60)
def test_increment_view_count_throttles_per_visitor(pipeline: str, articles: list[Article]) -> None:
    a = articles[0]
    assert PageView.increment_view_count(a, ip_address="198.51.100.7", user_agent="UA") is True
    assert PageView.increment_view_count(a, ip_address="198.51.100.7", user_agent="UA") is False
    assert PageView.increment_view_count(a, ip_address="198.51.100.8") is True
    assert PageView.increment_view_count(a, session_key="abc") is True
    assert PageView.increment_view_count(a, session_key="abc") is False
    batcher.ship_all()
    assert PageView.get_view_count(obj=a) == 3
    flush()
    assert PageView.get_view_count(obj=a) == 3
    rows = PageView.objects.filter(object_id=str(a.pk))
    assert sorted(r.ip_address or "" for r in rows) == ["", "198.51.100.0", "198.51.100.0"]
    assert set(rows.values_list("session_key", flat=True)) == {None}  # never stored


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0.2)
def test_increment_counts_again_after_the_window(pipeline: str, articles: list[Article]) -> None:
    a = articles[0]
    assert PageView.increment_view_count(a, ip_address="198.51.100.7") is True
    time.sleep(0.4)
    assert PageView.increment_view_count(a, ip_address="198.51.100.7") is True
    batcher.ship_all()
    assert PageView.get_view_count(obj=a) == 2


def test_wsgi_and_asgi_give_the_same_counts(pipeline: str, articles: list[Article]) -> None:
    a = articles[0]
    visit(f"/articles/{a.pk}/", 2)
    for headers in distinct_visitors(5)[2:]:
        wsgi_get(f"/articles/{a.pk}/", **headers)
    batcher.ship_all()
    assert PageView.get_view_count(obj=a) == 5
    assert PageView.get_views_by_period(a, days=1) == 5
