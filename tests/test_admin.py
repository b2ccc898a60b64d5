"""The read-only admin: lists, search, no writes, and page loads that stay cheap."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from django_pageviews.admin import SHORT_VISITOR_HASH, CappedCountPaginator
from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch, SkippedDaily
from django_pageviews.recorder import flush
from tests.conftest import wsgi_get
from tests.models import Article, Document

pytestmark = pytest.mark.django_db

MODELS = ["pageview", "pageviewdaily", "processedbatch", "skippeddaily"]
PAGEVIEW_TABLE = re.compile(rf"\b{PageView._meta.db_table}\b")


@pytest.fixture
def superuser_client(client: Client, admin_user: User) -> Iterator[Client]:
    """A client logged in as a superuser: every permission the admin grants, it has."""
    client.force_login(admin_user)
    yield client


def url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:django_pageviews_{model}_{view}", args=args)


def make_views(n: int) -> list[PageView]:
    """``n`` views spread over three content types (and none), as the admin lists them."""
    types = [ContentType.objects.get_for_model(m) for m in (Article, Document, User)] + [None]
    return PageView.objects.bulk_create(
        PageView(
            url=f"/page/{i}/",
            content_type=types[i % 4],
            object_id=str(i) if types[i % 4] else None,
            visitor_hash=f"{i:032x}",
        )
        for i in range(n)
    )


def test_changelists_list_the_rows(superuser_client: Client) -> None:
    article_type = ContentType.objects.get_for_model(Article)
    view = PageView.objects.create(
        url="/articles/7/",
        view_name="article-detail",
        content_type=article_type,
        object_id="7",
        ip_address="192.0.2.1",
        visitor_hash="0123456789abcdef0123456789abcdef",
    )
    daily = [
        PageViewDaily.objects.create(
            day=dt.date(2025, 1, 2), target_hash="a" * 32, url="/daily/one/", views=4
        ),
        PageViewDaily.objects.create(
            day=dt.date(2025, 1, 2), target_hash="b" * 32, url="/daily/two/", views=9
        ),
        PageViewDaily.objects.create(
            day=dt.date(2025, 1, 3), target_hash="a" * 32, url="/daily/one/", views=1
        ),
    ]
    batch = ProcessedBatch.objects.create(batch_id="batch-0001", views=14)

    response = superuser_client.get(url("pageview", "changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [view]
    html = response.content.decode()
    assert "/articles/7/" in html
    assert "article-detail" in html
    assert "192.0.2.1" in html
    assert f'<td class="field-visitor">{view.visitor_hash[:SHORT_VISITOR_HASH]}</td>' in html
    assert view.visitor_hash not in html

    response = superuser_client.get(url("pageviewdaily", "changelist"))
    assert response.status_code == 200
    # Newest day first, then the most viewed.
    assert list(response.context["cl"].result_list) == [daily[2], daily[1], daily[0]]
    assert "/daily/two/" in response.content.decode()

    response = superuser_client.get(url("processedbatch", "changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [batch]
    assert "batch-0001" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_requests_not_counted_are_listed_by_reason(superuser_client: Client) -> None:
    for _ in range(3):
        wsgi_get("/plain/", **{"user-agent": "Mozilla/5.0 (compatible; bingbot/2.0)"})
    wsgi_get("/plain/", **{"sec-purpose": "prefetch"})
    assert flush() == 0
    response = superuser_client.get(url("skippeddaily", "changelist"))
    assert response.status_code == 200
    rows = [(r.reason, r.requests) for r in response.context["cl"].result_list]
    assert rows == [("bot", 3), ("prefetch", 1)]  # the most first
    assert set(rows) == set(SkippedDaily.objects.values_list("reason", "requests"))


def test_salts_are_not_in_the_admin(superuser_client: Client) -> None:
    response = superuser_client.get(reverse("admin:index"))
    assert "Visitor salt" not in response.content.decode()
    assert "Requests not counted" in response.content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_added(superuser_client: Client, model: str) -> None:
    assert superuser_client.get(url(model, "add")).status_code == 403
    assert superuser_client.post(url(model, "add"), {}).status_code == 403


def test_rows_are_read_only(superuser_client: Client) -> None:
    view = PageView.objects.create(url="/a/", view_name="plain", user_agent="Mozilla/5.0 test")
    daily = PageViewDaily.objects.create(
        day=dt.date(2025, 1, 2), target_hash="a" * 32, url="/a/", views=3
    )
    batch = ProcessedBatch.objects.create(batch_id="batch-0001", views=3)
    for model, obj in (("pageview", view), ("pageviewdaily", daily), ("processedbatch", batch)):
        response = superuser_client.get(url(model, "change", obj.pk))
        assert response.status_code == 200
        html = response.content.decode()
        assert 'name="_save"' not in html
        assert "<form" in html  # the read-only page is there, only without its buttons
        assert superuser_client.get(url(model, "delete", obj.pk)).status_code == 403
        # A forged POST changes nothing either.
        assert (
            superuser_client.post(url(model, "change", obj.pk), {"url": "/x/"}).status_code == 403
        )
    detail = superuser_client.get(url("pageview", "change", view.pk)).content.decode()
    assert str(view.event_id) in detail
    assert "Mozilla/5.0 test" in detail
    view.refresh_from_db()
    assert view.url == "/a/"


def test_no_delete_action_on_the_changelist(superuser_client: Client) -> None:
    make_views(3)
    response = superuser_client.get(url("pageview", "changelist"))
    assert response.context["action_form"] is None
    assert "delete_selected" not in response.content.decode()


def ids(rows: Iterable[Model]) -> list[Any]:
    return sorted(r.pk for r in rows)


def test_search_is_a_case_sensitive_url_prefix(superuser_client: Client) -> None:
    blog = [
        PageView.objects.create(url="/blog/"),
        PageView.objects.create(url="/blog/first-post/"),
        PageView.objects.create(url="/blogroll/"),
    ]
    upper = PageView.objects.create(url="/Blog/upper/")
    for other in ("/about/blog/", "/news/"):
        PageView.objects.create(url=other)
    # SQLite's LIKE ignores case, whatever the lookup.
    other_case = [upper] if connection.vendor == "sqlite" else []
    daily_blog = PageViewDaily.objects.create(
        day=dt.date(2025, 1, 2), target_hash="a" * 32, url="/blog/x/", views=2
    )
    PageViewDaily.objects.create(
        day=dt.date(2025, 1, 2), target_hash="b" * 32, url="/about/blog/", views=2
    )

    response = superuser_client.get(url("pageview", "changelist"), {"q": "/blog"})
    assert response.status_code == 200
    assert ids(response.context["cl"].result_list) == ids(blog + other_case)
    # Quoted terms are unquoted, as Django's own search does.
    response = superuser_client.get(url("pageview", "changelist"), {"q": '"/blog/"'})
    assert ids(response.context["cl"].result_list) == ids(blog[:2] + other_case)

    response = superuser_client.get(url("pageviewdaily", "changelist"), {"q": "/blog"})
    assert list(response.context["cl"].result_list) == [daily_blog]


def test_filters_by_date_and_content_type(superuser_client: Client) -> None:
    views = make_views(8)
    old = views[0]
    old.timestamp = timezone.now() - dt.timedelta(days=30)
    old.save()
    article_type = ContentType.objects.get_for_model(Article)

    response = superuser_client.get(url("pageview", "changelist"), {"content_type__id__exact": "x"})
    assert response.status_code == 302  # an invalid filter value: Django's ?e=1 redirect
    response = superuser_client.get(
        url("pageview", "changelist"), {"content_type__id__exact": article_type.pk}
    )
    assert ids(response.context["cl"].result_list) == [
        v.pk for v in views if v.content_type_id == article_type.pk
    ]
    # A range in the form of the date filter's links (str() of aware datetimes).
    now = timezone.now()
    response = superuser_client.get(
        url("pageview", "changelist"),
        {
            "timestamp__gte": str(now - dt.timedelta(days=7)),
            "timestamp__lt": str(now + dt.timedelta(days=1)),
        },
    )
    assert ids(response.context["cl"].result_list) == [v.pk for v in views[1:]]


def changelist_queries(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("pageview", "changelist"))
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_changelist_queries_do_not_grow_with_the_table(
    superuser_client: Client, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    make_views(3)
    few = changelist_queries(superuser_client)
    make_views(297)
    with django_assert_max_num_queries(6):
        response = superuser_client.get(url("pageview", "changelist"))
    assert len(response.context["cl"].result_list) == 100
    # The same queries for 3 rows on one page as for 300 over several: no query per row
    # (list_select_related fetches the content types), none per page.
    assert len(changelist_queries(superuser_client)) == len(few)


def test_changelist_never_counts_the_whole_raw_table(superuser_client: Client) -> None:
    make_views(300)
    on_table = [sql for sql in changelist_queries(superuser_client) if PAGEVIEW_TABLE.search(sql)]
    counts = [sql for sql in on_table if "COUNT(" in sql.upper()]
    # One count, of a slice; the page of rows itself is a slice too.
    assert len(counts) == 1
    assert f"LIMIT {CappedCountPaginator.max_count}" in counts[0].upper()
    assert all("LIMIT" in sql.upper() for sql in on_table), on_table
    assert all("DISTINCT" not in sql.upper() for sql in on_table), on_table


def test_the_count_stops_at_the_cap(
    superuser_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_views(300)
    monkeypatch.setattr(CappedCountPaginator, "max_count", 150)
    response = superuser_client.get(url("pageview", "changelist"))
    cl = response.context["cl"]
    assert cl.result_count == 150
    assert cl.paginator.num_pages == 2
    response = superuser_client.get(url("pageview", "changelist"), {"p": "2"})
    assert len(response.context["cl"].result_list) == 50
    # Past the cap: Django's answer to a page that does not exist.
    assert superuser_client.get(url("pageview", "changelist"), {"p": "3"}).status_code == 302


def test_capped_paginator_counts_querysets_and_lists() -> None:
    make_views(7)
    paginator = CappedCountPaginator(PageView.objects.order_by("id"), per_page=2)
    paginator.max_count = 5
    with CaptureQueriesContext(connection) as queries:
        assert paginator.count == 5
    assert len(queries.captured_queries) == 1
    assert "LIMIT 5" in queries.captured_queries[0]["sql"].upper()
    assert "ORDER BY" not in queries.captured_queries[0]["sql"].upper()
    assert paginator.num_pages == 3
    assert [v.url for v in paginator.page(3)] == ["/page/4/"]

    paginator = CappedCountPaginator(PageView.objects.order_by("id"), per_page=2)
    assert paginator.count == 7
    assert CappedCountPaginator(list(range(12)), per_page=2).count == 12
    small = CappedCountPaginator(list(range(12)), per_page=2)
    small.max_count = 10
    assert small.count == 10
