"""Reads: daily totals plus views still buffered in this process."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType

from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import asgi_get, asgi_requests, distinct_visitors
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)


def test_counts_are_live_before_and_after_the_flush() -> None:
    article = Article.objects.create(title="A", slug="a")
    asgi_requests([("GET", f"/articles/{article.pk}/", h) for h in distinct_visitors(3)])
    assert PageView.get_view_count(obj=article) == 3
    assert PageView.get_view_count(url=f"/articles/{article.pk}/") == 3
    assert PageView.get_view_count(view_name="article-detail") == 3
    assert PageView.get_view_count(obj=article, view_name="other") == 0
    assert flush() == 3
    assert PageView.get_view_count(obj=article) == 3
    asgi_requests([("GET", f"/articles/{article.pk}/", h) for h in distinct_visitors(5)[3:]])
    assert PageView.get_view_count(obj=article) == 5
    assert PageView.get_view_count() == 5


def test_counts_for_many_objects_in_one_query(django_assert_num_queries: object) -> None:
    articles = [Article.objects.create(title=str(i), slug=f"s{i}") for i in range(50)]
    requests = []
    for i, article in enumerate(articles[:10]):
        requests += [("GET", f"/by-slug/{article.slug}/", h) for h in distinct_visitors(i + 1)]
    asgi_requests(requests)
    flush()
    # Views still buffered, by slug, count too.
    asgi_requests([("GET", f"/by-slug/{articles[0].slug}/", distinct_visitors(2)[1])])
    ContentType.objects.get_for_model(Article)  # warm the content type cache
    with django_assert_num_queries(1):  # type: ignore[operator]
        counts = PageView.get_view_counts_for_objects(articles)
    expected = {a.pk: (i + 1 if i < 10 else 0) for i, a in enumerate(articles)}
    expected[articles[0].pk] += 1
    assert counts == expected


def test_counts_for_no_objects_is_empty(django_assert_num_queries: object) -> None:
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert PageView.get_view_counts_for_objects([]) == {}


def test_a_long_path_is_found_by_its_full_url() -> None:
    path = "/long/" + "x" * 800
    assert asgi_get(path).status_code == 200
    assert PageView.get_view_count(url=path) == 1
    flush()
    assert PageView.objects.get().url == path[:700]
    assert PageView.get_view_count(url=path) == 1


def test_the_0_2_api_is_written_out_with_its_types() -> None:
    """``PageView``'s class-level API has real signatures (it was a descriptor typed Any)."""
    import inspect
    import typing

    from django_pageviews import queries, reports

    pairs: list[tuple[str, typing.Callable[..., object]]] = [
        ("get_view_count", queries.get_view_count),
        ("get_view_counts_for_objects", queries.get_view_counts_for_objects),
        ("get_views_by_period", reports.get_views_by_period),
        ("get_daily_views", reports.get_daily_views),
        ("get_popular_urls", reports.get_popular_urls),
        ("get_popular_view_names", reports.get_popular_view_names),
    ]
    for name, implementation in pairs:
        method = getattr(PageView, name)
        assert list(inspect.signature(method).parameters) == list(
            inspect.signature(implementation).parameters
        ), name
        assert (
            typing.get_type_hints(method)["return"]
            == typing.get_type_hints(implementation)["return"]
        ), name
        assert inspect.iscoroutinefunction(getattr(PageView, "a" + name)), name
