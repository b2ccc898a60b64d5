"""The ``pageview_tags`` library, rendered in real templates over views recorded through
the real middleware: on both pipelines, with the views still pending and after a flush."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldError
from django.db import models
from django.http import HttpRequest
from django.template import Context, Template, TemplateSyntaxError, engines
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import resolve
from django.utils import dateformat, timezone

from django_pageviews.models import PageViewDaily
from django_pageviews.recorder import flush
from django_pageviews.redis.sync_batcher import batcher
from django_pageviews.templatetags.pageview_tags import (
    format_number,
    format_number_with_options,
    get_item,
)
from django_pageviews.totals import rebuild
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get
from tests.models import Article

# Requests run in other threads: their views must be visible, so no wrapping transaction.
transactional = pytest.mark.django_db(transaction=True)
flushed_or_not = pytest.mark.parametrize("flushed", [False, True], ids=["pending", "flushed"])


def visit(path: str, n: int, first_visitor: int = 0) -> None:
    """``n`` views of ``path`` by distinct visitors (so none is throttled), through ASGI."""
    visitors = distinct_visitors(first_visitor + n)[first_visitor:]
    responses = asgi_requests([("GET", path, h) for h in visitors])
    assert [r.status_code for r in responses] == [200] * n


def age(path: str, days: int) -> None:
    """Move the stored views of ``path`` ``days`` days into the past (flush them first).
    An edit by hand: the per-key rows are then recomputed from the daily rows."""
    for row in PageViewDaily.objects.filter(url=path):
        row.day -= timedelta(days=days)
        row.save(update_fields=["day"])
    rebuild("default")


def request_for(path: str) -> HttpRequest:
    """A request for ``path`` as a view sees it: resolved, so it has a resolver_match."""
    request = RequestFactory().get(path)
    request.resolver_match = resolve(path)
    return request


def render(source: str, request: HttpRequest | None = None, **context: Any) -> str:
    """``source`` rendered by the project's engine, with context processors when there is
    a request, as a view's template would be."""
    template = engines["django"].from_string("{% load pageview_tags %}" + source)
    return template.render(context, request)


def squash(html: str) -> str:
    return " ".join(html.split())


def day_label(day: date) -> str:
    return dateformat.format(day, "M d")


# -- filters -------------------------------------------------------------------------------

FORMAT_NUMBER = [
    (1120, None, "1.1K"),
    (1500, None, "1.5K"),
    (1000, None, "1K"),
    (2000, None, "2K"),
    (1500000, None, "1.5M"),
    (2500000, None, "2.5M"),
    (1000000000, None, "1B"),
    (2000000000, None, "2B"),
    (3400000000000, None, "3.4T"),
    (10**15, None, "1000T"),  # T is the largest unit
    (1234, 2, "1.23K"),
    (1120, 2, "1.12K"),
    (1120, 0, "1K"),
    (1500, 0, "2K"),  # half rounds up
    (1250, None, "1.3K"),  # exactly, not as the float 1.25 would round
    (999999, None, "1M"),  # rounds up to the next unit, never "1000K"
    (999, None, 999),
    (0, None, 0),
    (-999, None, -999),
    (-1500, None, "-1.5K"),
    (-2000000, None, "-2M"),
    (1500.0, None, "1.5K"),
    (Decimal("1234.5"), None, "1.2K"),
    ("1500", None, "1.5K"),
    ("abc", None, "abc"),
    ("", None, ""),
    (None, None, None),
    (True, None, True),
    (float("inf"), None, float("inf")),
    ([1500], None, [1500]),
    (1120, "x", "1.1K"),  # an unusable precision falls back to 1
    (1120, -1, "1.1K"),
    (1120, "2", "1.12K"),
]


@pytest.mark.parametrize(("value", "precision", "expected"), FORMAT_NUMBER)
def test_format_number(value: Any, precision: Any, expected: Any) -> None:
    result = format_number(value) if precision is None else format_number(value, precision)
    assert result == expected
    assert type(result) is type(expected)
    source = "{{ value|format_number }}" if precision is None else "{{ value|format_number:p }}"
    assert render(source, value=value, p=precision) == str(expected)


def test_format_number_escapes_what_it_returns_unchanged() -> None:
    assert render("{{ value|format_number }}", value="<b>1</b>") == "&lt;b&gt;1&lt;/b&gt;"


def test_format_number_literal_arguments() -> None:
    assert render("{{ 1234|format_number:2 }} {{ 1120|format_number }}") == "1.23K 1.1K"


FORMAT_WITH_OPTIONS = [
    (1120, "precision:2,min_threshold:10000,suffix_style:lower", 1120),
    (12345, "precision:2,min_threshold:10000,suffix_style:lower", "12.35k"),
    (12345, "precision:2,min_threshold:10000", "12.35K"),
    (1120, "precision:1,suffix_style:lower", "1.1k"),
    (2500000, "suffix_style:lower", "2.5m"),
    (3000000000, "suffix_style:lower", "3b"),
    (1120, "min_threshold:5000", 1120),
    (5000, "min_threshold:5000", "5K"),
    (1120, "precision:0,min_threshold:1000,suffix_style:upper", "1K"),
    (1120, "precision:0", "1K"),
    (-12345, "min_threshold:10000", "-12.3K"),
    (500, "min_threshold:100", 500),  # below 1000 there is no suffix to add
    (1120, "", "1.1K"),
    # Bad options are ignored one by one; the good ones still apply.
    (1120, "precision:x,suffix_style:lower", "1.1k"),
    (1120, "precision:-3,suffix_style:lower", "1.1k"),
    (1120, "min_threshold:lots,precision:2", "1.12K"),
    (1120, "suffix_style:shouty,precision:2", "1.12K"),
    (1120, "colour:red,,precision,:2, PRECISION : 2 ", "1.12K"),
    (1120, None, "1.1K"),
    (1120, 42, "1.1K"),
    ("abc", "precision:2", "abc"),
    (None, "precision:2", None),
]


@pytest.mark.parametrize(("value", "options", "expected"), FORMAT_WITH_OPTIONS)
def test_format_number_with_options(value: Any, options: Any, expected: Any) -> None:
    assert format_number_with_options(value, options) == expected
    rendered = render(
        "{{ value|format_number_with_options:options }}", value=value, options=options
    )
    assert rendered == str(expected)


def test_format_number_with_options_literal_and_default() -> None:
    source = '{{ 12345|format_number_with_options:"precision:2,suffix_style:lower" }} '
    source += "{{ 1120|format_number_with_options }}"
    assert render(source) == "12.35k 1.1K"


GET_ITEM = [
    ({"a": 1}, "a", 1),
    ({1: 7}, 1, 7),
    ({1: 7}, "1", ""),  # keys are not converted: a pk is looked up as the pk it is
    ({"a": 1}, "b", ""),
    ({"a": None}, "a", None),
    ({"a": 1}, ["unhashable"], ""),
    (["a"], 0, ""),
    ("text", 0, ""),
    (None, "a", ""),
]


@pytest.mark.parametrize(("mapping", "key", "expected"), GET_ITEM)
def test_get_item(mapping: Any, key: Any, expected: Any) -> None:
    assert get_item(mapping, key) == expected
    assert render("{{ mapping|get_item:key }}", mapping=mapping, key=key) == str(expected)


def test_get_item_with_a_default() -> None:
    assert render("{{ counts|get_item:3|default:0 }}", counts={1: 5}) == "0"


# -- counts --------------------------------------------------------------------------------


@transactional
@flushed_or_not
def test_get_view_count_as_filter_and_tag(pipeline: str, flushed: bool) -> None:
    article = Article.objects.create(title="Hello", slug="hello")
    other = Article.objects.create(title="Other", slug="other")
    visit(f"/articles/{article.pk}/", 2)
    visit(f"/by-slug/{article.slug}/", 1)  # by slug: the same article
    visit(f"/articles/{other.pk}/", 4)
    if flushed:
        assert flush() == 7
    source = (
        "{{ article|get_view_count }}|{% get_view_count article %}|"
        "{% get_view_count article as n %}[{{ n }}]|{{ other|get_view_count }}|"
        "{{ missing|get_view_count }}|{{ unsaved|get_view_count }}|{% get_view_count None %}"
    )
    unsaved = Article(title="New", slug="new")
    assert render(source, article=article, other=other, unsaved=unsaved) == "3|3|[3]|4|0|0|0"


@transactional
@flushed_or_not
def test_url_and_view_name_counts_of_the_current_page(pipeline: str, flushed: bool) -> None:
    visit("/pages/1/", 3)
    for headers in distinct_visitors(5)[3:]:  # WSGI views count the same
        assert wsgi_get("/pages/1/", **headers).status_code == 200
    batcher.ship_all()  # WSGI views wait in this process's batcher for a few milliseconds
    visit("/pages/2/", 1)
    visit("/plain/", 2)  # an unnamed pattern: counted under its dotted view path
    if flushed:
        assert flush() == 8
    source = (
        "{% get_url_view_count %}|{% get_url_view_count as here %}[{{ here }}]|"
        "{% get_url_view_count '/pages/2/' %}|{% get_url_view_count '/pages/2/' as two %}"
        "[{{ two }}]|{% get_url_view_count '/nowhere/' %}|"
        "{% get_view_name_count %}|{% get_view_name_count as mine %}[{{ mine }}]|"
        "{% get_view_name_count 'tests.views.plain' %}|"
        "{% get_view_name_count 'plain' as named %}[{{ named }}]|"
        "{% get_view_name_count '' %}"
    )
    assert render(source, request_for("/pages/1/")) == "5|[5]|1|[1]|0|6|[6]|2|[0]|0"
    assert render("{% get_view_name_count %}", request_for("/plain/")) == "2"


@transactional
def test_view_name_count_of_a_page_that_resolved_to_no_view() -> None:
    visit("/pages/1/", 1)
    assert render("{% get_view_name_count %}", RequestFactory().get("/missing/")) == "0"


def test_current_page_tags_need_the_request() -> None:
    for tag in ("get_url_view_count", "get_view_name_count"):
        with pytest.raises(TemplateSyntaxError) as error:
            Template("{% load pageview_tags %}{% " + tag + " %}").render(Context())
        assert str(error.value) == (
            f"{{% {tag} %}} without an argument reads the current request, and there is none "
            "in the template context: add 'django.template.context_processors.request' to "
            "the template context processors, or pass the argument."
        )


@transactional
def test_explicit_arguments_need_no_request() -> None:
    template = Template(
        "{% load pageview_tags %}{% get_url_view_count '/pages/1/' %}"
        "{% get_view_name_count 'numbered-page' %}"
    )
    assert template.render(Context()) == "00"


# -- lists of objects ----------------------------------------------------------------------


@transactional
@flushed_or_not
@pytest.mark.parametrize("size", [5, 50])
def test_list_page_counts_in_constant_queries(
    pipeline: str,
    flushed: bool,
    size: int,
    django_assert_num_queries: Callable[[int], Any],
) -> None:
    articles = [Article.objects.create(title=f"T{i}", slug=f"s{i}") for i in range(size)]
    visit(f"/articles/{articles[0].pk}/", 3)
    visit(f"/by-slug/{articles[1].slug}/", 2)
    visit(f"/async-articles/{articles[-1].pk}/", 1)
    if flushed:
        assert flush() == 6
    expected = {a.pk: 0 for a in articles}
    expected[articles[0].pk] = 3
    expected[articles[1].pk] = 2
    expected[articles[-1].pk] = 1
    ContentType.objects.get_for_model(Article)  # warm the content type cache
    with django_assert_num_queries(2):  # the articles, and all their counts
        html = render_to_string(
            "tests/pageview_tags_article_list.html",
            {"articles": Article.objects.order_by("pk")},
        )
    items = " ".join(f"<li>{a.title}: {expected[a.pk]}</li>" for a in articles)
    assert squash(html) == f"<ul> {items} </ul>"


@transactional
def test_counts_for_objects_ignores_what_is_not_a_saved_object() -> None:
    article = Article.objects.create(title="A", slug="a")
    visit(f"/articles/{article.pk}/", 2)
    source = (
        "{% get_view_counts_for_objects items as counts %}{{ counts|get_item:article.pk }}|"
        "{% get_view_counts_for_objects missing as none %}{{ none|get_item:article.pk }}|"
        "{% get_view_counts_for_objects 7 as seven %}{{ seven|length }}"
    )
    items = [article, Article(title="unsaved", slug="u"), "text", None]
    assert render(source, items=items, article=article) == "2||0"


# -- reports -------------------------------------------------------------------------------


@pytest.fixture
def popular(pipeline: str) -> dict[str, Article]:
    """Four articles viewed 3, 5 (by slug), 1 time(s) this week, one 4 times 10 days ago."""
    a, b, c, old = (Article.objects.create(title=t, slug=t.lower()) for t in "ABCD")
    visit(f"/articles/{old.pk}/", 4)
    flush()
    age(f"/articles/{old.pk}/", 10)
    visit(f"/articles/{a.pk}/", 3)
    visit(f"/by-slug/{b.slug}/", 5)
    visit(f"/articles/{c.pk}/", 1)
    visit("/async/", 2)
    return {"a": a, "b": b, "c": c, "old": old}


@transactional
@flushed_or_not
def test_popular_objects(popular: dict[str, Article], flushed: bool) -> None:
    if flushed:
        assert flush() == 11
    loop = "{% for obj, n in top %}{{ obj.title }}={{ n }} {% endfor %}"
    cases = {
        "{% get_popular_objects 'Article' 'tests' limit=5 days=7 as top %}": "B=5 A=3 C=1 ",
        "{% get_popular_objects 'Article' 'tests' as top %}": "B=5 D=4 A=3 C=1 ",
        "{% get_popular_objects 'Article' limit=2 as top %}": "B=5 D=4 ",
        "{% get_popular_objects 'article' days=1 limit=1 as top %}": "B=5 ",
        "{% get_popular_objects 'tests.Article' limit=2 days=7 as top %}": "B=5 A=3 ",
        "{% get_popular_objects 'Article' 'tests' limit='2' days='7' as top %}": "B=5 A=3 ",
        "{% get_popular_objects 'Article' 'tests' 3 7 as top %}": "B=5 A=3 C=1 ",
        "{% get_popular_objects 'Article' 'tests' limit=1 days='' as top %}": "B=5 ",
        "{% get_popular_objects 'Article' 'tests' limit=2 select_related='' "
        "prefetch_related=' , ' as top %}": "B=5 D=4 ",
        "{% get_popular_objects 'Document' 'tests' as top %}": "",
    }
    for tag, expected in cases.items():
        assert render(tag + loop) == expected, tag


@transactional
def test_popular_objects_passes_related_fields_to_the_query() -> None:
    """Related fields, as a list or a comma-separated string, reach the objects' query
    (Article has no relation, so the query names the fields it was given and fails)."""
    article = Article.objects.create(title="A", slug="a")
    visit(f"/articles/{article.pk}/", 1)
    for source in (
        "{% get_popular_objects 'Article' 'tests' select_related=' nope , ' %}",
        "{% get_popular_objects 'Article' 'tests' select_related=fields %}",
    ):
        with pytest.raises(FieldError) as error:
            render(source, fields=["nope"])
        # One name only: Django lists several in set order, which varies between runs.
        assert str(error.value) == (
            "Invalid field name(s) given in select_related: 'nope'. Choices are: (none)"
        )
    with pytest.raises(AttributeError) as prefetch_error:
        render("{% get_popular_objects 'Article' 'tests' prefetch_related='nope' %}")
    assert str(prefetch_error.value) == (
        "Cannot find 'nope' on Article object, 'nope' is an invalid parameter to prefetch_related()"
    )


@transactional
@flushed_or_not
def test_popular_urls_and_view_names(popular: dict[str, Article], flushed: bool) -> None:
    if flushed:
        assert flush() == 11
    a, b, c, old = popular["a"], popular["b"], popular["c"], popular["old"]
    loop = "{% for key, n in top %}{{ key }}={{ n }} {% endfor %}"
    urls = "{% get_popular_urls limit=5 days=7 as top %}" + loop
    assert render(urls) == (
        f"/by-slug/{b.slug}/=5 /articles/{a.pk}/=3 /async/=2 /articles/{c.pk}/=1 "
    )
    all_time = "{% get_popular_urls limit=2 as top %}" + loop
    assert render(all_time) == f"/by-slug/{b.slug}/=5 /articles/{old.pk}/=4 "
    assert render("{% get_popular_urls as top %}{{ top|length }}") == "5"
    names = "{% get_popular_view_names limit=5 days=7 as top %}" + loop
    assert render(names) == "article-slug=5 article-detail=4 async-page=2 "
    assert render("{% get_popular_view_names days=14 as top %}" + loop) == (
        "article-detail=8 article-slug=5 async-page=2 "  # D's views, 10 days old, count
    )
    assert render("{% get_popular_view_names as top %}" + loop) == (
        "article-detail=8 article-slug=5 async-page=2 "
    )


@transactional
@flushed_or_not
def test_daily_views(pipeline: str, flushed: bool) -> None:
    article = Article.objects.create(title="A", slug="a")
    visit(f"/articles/{article.pk}/", 3)
    flush()
    age(f"/articles/{article.pk}/", 2)
    visit(f"/articles/{article.pk}/", 2, first_visitor=3)
    if flushed:
        assert flush() == 2
    today = timezone.localdate()
    source = (
        "{% get_daily_views article days=4 as daily %}"
        "{% for day, n in daily.items %}{{ day|date:'Y-m-d' }}={{ n }} {% endfor %}|"
        "{% get_daily_views article as month %}{{ month|length }}|"
        "{% get_daily_views missing days=3 as nothing %}{{ nothing|length }}"
    )
    days = [today - timedelta(days=i) for i in (3, 2, 1, 0)]
    expected = " ".join(f"{d.isoformat()}={n}" for d, n in zip(days, [0, 3, 0, 2], strict=True))
    assert render(source, article=article) == f"{expected} |30|0"


# -- errors of the tags --------------------------------------------------------------------


@pytest.fixture
def second_article_model() -> Iterator[type[models.Model]]:
    """Another installed model named Article (in the sessions app), for the test only."""

    class Article(models.Model):
        class Meta:
            app_label = "sessions"

        def __str__(self) -> str:
            return f"sessions article {self.pk}"

    try:
        yield Article
    finally:
        del apps.all_models["sessions"]["article"]
        apps.clear_cache()


@transactional
def test_popular_objects_of_an_unknown_or_ambiguous_model(
    second_article_model: type[models.Model],
) -> None:
    cases = {
        "{% get_popular_objects 'Articel' %}": (
            "{% get_popular_objects %}: no installed model is named 'Articel'."
        ),
        "{% get_popular_objects 'Article' 'blog' %}": (
            "{% get_popular_objects %}: no model 'Article' in app 'blog'."
        ),
        "{% get_popular_objects 'blog.Article' %}": (
            "{% get_popular_objects %}: no model 'Article' in app 'blog'."
        ),
        "{% get_popular_objects 'Article' %}": (
            "{% get_popular_objects %}: 'Article' is ambiguous (sessions.Article, "
            "tests.Article): pass the app label, as in "
            "{% get_popular_objects 'Article' 'app_label' %}."
        ),
        "{% get_popular_objects 'Article' 'tests' limit='many' %}": (
            "{% get_popular_objects %}: limit must be a whole number, not 'many'."
        ),
        "{% get_popular_urls days='week' %}": (
            "{% get_popular_urls %}: days must be a whole number, not 'week'."
        ),
        "{% get_popular_view_names limit=None %}": (
            "{% get_popular_view_names %}: limit must be a whole number, not None."
        ),
        "{% get_daily_views article days='x' %}": (
            "{% get_daily_views %}: days must be a whole number, not 'x'."
        ),
    }
    article = Article.objects.create(title="A", slug="a")
    for source, message in cases.items():
        with pytest.raises(TemplateSyntaxError) as error:
            render(source, article=article)
        assert str(error.value) == message, source
    # With its app label, each of the two is found.
    assert render("{% get_popular_objects 'Article' 'tests' as top %}{{ top }}") == "[]"
    assert render("{% get_popular_objects 'Article' 'sessions' as top %}{{ top }}") == "[]"


# -- the examples of the original documentation ----------------------------------------------


@transactional
@flushed_or_not
def test_article_detail_page(pipeline: str, flushed: bool) -> None:
    article = Article.objects.create(title="Hello", slug="hello")
    path = f"/articles/{article.pk}/"
    visit(path, 3)
    flush()
    age(path, 2)
    visit(path, 2, first_visitor=3)
    visit(f"/by-slug/{article.slug}/", 1)  # the article, on another page
    if flushed:
        assert flush() == 3
    html = render_to_string(
        "tests/pageview_tags_article_detail.html", {"article": article}, request_for(path)
    )
    today = timezone.localdate()
    counts = dict.fromkeys((today - timedelta(days=13 - i) for i in range(14)), 0)
    counts[today - timedelta(days=2)] = 3
    counts[today] = 3
    days = " ".join(
        f'<div class="day" data-views="{n}"> {day_label(d)}: {n} </div>' for d, n in counts.items()
    )
    assert squash(html) == (
        '<article> <h1>Hello</h1> <p>6 views</p> <p class="meta"> Views: 6 | This page: 5 </p> '
        f'</article> <div class="daily-views"> <h3>Daily Views (Last 2 Weeks)</h3> {days} </div>'
    )


@transactional
@flushed_or_not
def test_popular_content_sidebar(popular: dict[str, Article], flushed: bool) -> None:
    if flushed:
        assert flush() == 11
    a, c = popular["a"], popular["c"]
    html = render_to_string("tests/pageview_tags_sidebar.html")
    assert squash(html) == (
        '<div class="sidebar"> <div class="widget"> <h3>Popular Articles</h3> <ul> '
        "<li>B (5)</li> <li>A (3)</li> <li>C (1)</li> </ul> </div> "
        '<div class="widget"> <h3>All-Time Favourites</h3> <ul> '
        "<li>B - 5 views</li> <li>D - 4 views</li> </ul> </div> "
        '<div class="widget"> <h3>Trending Pages</h3> <ul> '
        '<li> <a href="/by-slug/b/">/by-slug/b/</a> <span class="views">5</span> </li> '
        f'<li> <a href="/articles/{a.pk}/">/articles/{a.pk}/</a> <span class="views">3</span> '
        "</li> "
        '<li> <a href="/async/">/async/</a> <span class="views">2</span> </li> '
        f'<li> <a href="/articles/{c.pk}/">/articles/{c.pk}/</a> <span class="views">1</span> '
        "</li> </ul> </div> </div>"
    )


@transactional
@flushed_or_not
def test_dashboard_statistics(pipeline: str, flushed: bool) -> None:
    article = Article.objects.create(title="Hello", slug="hello")
    visit("/pages/1/", 2)
    flush()
    age("/pages/1/", 20)  # out of the weekly and fortnightly lists, still in the totals
    visit("/", 6)
    visit(f"/articles/{article.pk}/", 3)
    visit("/async/", 1)
    if flushed:
        assert flush() == 10
    html = render_to_string("tests/pageview_tags_dashboard.html", {"article": article})
    today = timezone.localdate()
    daily = " ".join(
        f'<span data-date="{(today - timedelta(days=i)).isoformat()}" data-views="{n}">{n}</span>'
        for i, n in ((2, 0), (1, 0), (0, 3))
    )
    assert squash(html) == (
        '<div class="dashboard"> <div class="stats-grid"> '
        '<div class="stat-card"> <h3>Home Page Views</h3> <span class="big-number">6</span> '
        "</div> "
        '<div class="stat-card"> <h3>Popular Content</h3> <p>plain: 6</p> </div> '
        '<div class="stat-card"> <h3>Trending Pages</h3> <ol> <li>/ - 6 views</li> '
        f"<li>/articles/{article.pk}/ - 3 views</li> <li>/async/ - 1 views</li> </ol> </div> "
        '<div class="stat-card"> <h3>Views by Page Type (Last 2 Weeks)</h3> <ul> '
        "<li>plain - 6 views</li> <li>article-detail - 3 views</li> "
        "<li>async-page - 1 views</li> </ul> </div> "
        f'<div class="stat-card"> <h3>Hello</h3> {daily} </div> </div> </div>'
    )


@transactional
def test_thousands_of_views_are_abbreviated() -> None:
    """1,234 real views, the numbers the filters were made for: read while the writer
    thread is still writing them a batch at a time, and again once all are written."""
    article = Article.objects.create(title="Hello", slug="hello")
    visit(f"/async-articles/{article.pk}/", 1234)
    source = (
        "{{ article|get_view_count }} {{ article|get_view_count|format_number }} "
        "{% get_view_count article as n %}{{ n|format_number:2 }} "
        "{% get_url_view_count as here %}"
        '{{ here|format_number_with_options:"precision:0,suffix_style:lower" }} '
        '{{ here|format_number_with_options:"min_threshold:10000" }} '
        "{% get_view_counts_for_objects articles as counts %}"
        "{{ counts|get_item:article.pk|format_number }}"
    )
    request = request_for(f"/async-articles/{article.pk}/")
    expected = "1234 1.2K 1.23K 1k 1234 1.2K"
    assert render(source, request, article=article, articles=[article]) == expected
    flush()
    assert PageViewDaily.objects.get().views == 1234
    assert render(source, request, article=article, articles=[article]) == expected
