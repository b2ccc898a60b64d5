"""The public counter: opt-in only, exact counts as JSON and as an SVG badge, cacheable
by a CDN, embedded by a template tag; anything not opted in is an indistinct 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any
from xml.etree import ElementTree

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from django_pageviews.counter.badge import badge
from django_pageviews.events import Target
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import Request, asgi_requests
from tests.history import article_target, days_ago, record_pending, store, visit
from tests.models import Article, Document

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "/pageviews/counter.json"
SVG = "/pageviews/counter.svg"
SVG_NS = "{http://www.w3.org/2000/svg}"
NOT_FOUND = {"error": "Not found."}


@pytest.fixture(autouse=True)
def _public() -> Iterator[None]:
    with override_settings(
        PAGEVIEW_PUBLIC_COUNTERS=["/articles/*", "tests.article", "/about/"],
    ):
        yield


@pytest.fixture
def article() -> Article:
    return Article.objects.create(title="First", slug="first")


def get(url: str, **headers: str) -> tuple[int, dict[str, Any]]:
    response = Client().get(url, headers=headers)
    return response.status_code, json.loads(response.content)


@pytest.mark.parametrize("flushed", [False, True], ids=["pending", "flushed"])
def test_json_counts_of_a_path_and_an_object(
    pipeline: str, article: Article, flushed: bool
) -> None:
    target = article_target(article)
    store(target, 1230, age=30)
    record_pending(target, 4, age=2)
    visit(f"/articles/{article.pk}/", 3)
    if flushed:
        flush()
    by_url = get(f"{JSON}?url=/articles/{article.pk}/")
    assert by_url == (
        200,
        {
            "subject": {"url": f"/articles/{article.pk}/"},
            "since": None,
            "views": 1237,
            "display": "1.2K",
        },
    )
    status, by_object = get(f"{JSON}?model=tests.article&pk={article.pk}")
    assert (status, by_object["views"], by_object["display"]) == (200, 1237, "1.2K")
    since = days_ago(2).isoformat()
    status, recent = get(f"{JSON}?model=tests.article&pk={article.pk}&since={since}")
    assert (status, recent["views"], recent["display"], recent["since"]) == (200, 7, "7", since)
    assert get(f"{JSON}?url=/articles/{article.pk}/&since={since}")[1]["views"] == 7


def test_compact_numbers(article: Article) -> None:
    target = article_target(article)
    for views, display in [(999, "999"), (1, "1K"), (3_399_000, "3.4M")]:
        store(target, views, age=1)
        assert get(f"{JSON}?url=/articles/{article.pk}/")[1]["display"] == display


def test_svg_badge(article: Article) -> None:
    store(article_target(article), 1234, age=3)
    response = Client().get(f"{SVG}?model=tests.article&pk={article.pk}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    svg = ElementTree.fromstring(response.content)
    assert svg.tag == f"{SVG_NS}svg"
    assert (svg.get("role"), svg.get("aria-label")) == ("img", "1,234 views")
    assert svg[0].tag == f"{SVG_NS}title" and svg[0].text == "1,234 views"
    assert [t.text for t in svg.iter(f"{SVG_NS}text")] == ["views", "1.2K"]
    assert not [e for e in svg.iter() if e.tag.split("}")[1] in ("script", "foreignObject")]

    since = days_ago(1).isoformat()
    store(article_target(article), 1, age=0)
    recent = ElementTree.fromstring(
        Client().get(f"{SVG}?url=/articles/{article.pk}/&since={since}").content
    )
    assert recent.get("aria-label") == f"1 view since {since}"
    assert [t.text for t in recent.iter(f"{SVG_NS}text")] == [f"views since {since}", "1"]


def test_no_request_text_reaches_the_badge() -> None:
    path = '/articles/"><script>alert(1)</script><x a="/'
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["/*"]):
        store(Target(path, "", "", "", ""), 5, age=0)
        response = Client().get(SVG, {"url": path})
        assert response.status_code == 200
        assert b"script" not in response.content and b"alert" not in response.content
        assert json.loads(Client().get(JSON, {"url": path}).content)["views"] == 5
    # The badge escapes what it shows all the same.
    assert "<b>" not in badge(1) and "&lt;" not in badge(10**15)


def test_badge_widths_follow_the_text() -> None:
    def width(svg: str) -> int:
        return int(ElementTree.fromstring(svg).get("width") or 0)

    assert width(badge(5)) < width(badge(1234)) < width(badge(1234, date(2026, 1, 1)))


# -- opt-in --------------------------------------------------------------------------------


def test_targets_not_opted_in_are_404_like_missing_ones(article: Article) -> None:
    doc = Document.objects.create(code="secret")
    store(Target("/private/", "", "", "", ""), 7, age=0)
    store(Target(f"/docs/{doc.code}/", "document", "tests.document", "pk", str(doc.pk)), 3, age=0)
    for base in (JSON, SVG):
        for query in (
            "url=/private/",
            f"url=/docs/{doc.code}/",
            f"model=tests.document&pk={doc.pk}",
            f"model=tests.article&pk={article.pk + 1000}",  # opted in, no such object
            "model=tests.article&pk=abc",
            "model=tests.nosuch&pk=1",
            "model=nosuch&pk=1",
            "url=/articles",  # "/articles/" with the slash appended: "/articles/*" matches
        ):
            response = Client().get(f"{base}?{query}")
            if query == "url=/articles":
                assert response.status_code == 200
                continue
            assert response.status_code == 404, query
            assert json.loads(response.content) == NOT_FOUND
            assert b"7" not in response.content and b"3" not in response.content
            assert "no-store" in response["Cache-Control"]


def test_nothing_is_public_by_default(article: Article) -> None:
    visit(f"/articles/{article.pk}/", 1)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=[]):
        for url in (f"{JSON}?url=/articles/{article.pk}/", f"{SVG}?model=tests.article&pk=1"):
            assert get(url) == (404, NOT_FOUND)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS="/articles/*"):  # wrong type (E038): off
        assert get(f"{JSON}?url=/articles/{article.pk}/") == (404, NOT_FOUND)


def test_view_names_have_no_public_counter() -> None:
    status, body = get(f"{JSON}?view=article-detail")
    assert status == 400
    assert body == {"error": "Unknown parameter(s) 'view'; allowed: url, model, pk, since."}


@pytest.mark.parametrize(
    "query",
    ["", "url=/about/&model=tests.article&pk=1", "url=/about/&since=yesterday", "url=/about/&x=1",
     "url=/about/&url=/about/", "url=about/", "url=/about/&since=2999-01-01"],
)  # fmt: skip
def test_bad_parameters_are_400(query: str) -> None:
    assert Client().get(f"{JSON}?{query}").status_code == 400
    assert Client().get(f"{SVG}?{query}").status_code == 400


# -- caching -------------------------------------------------------------------------------


def test_cache_headers_for_cdns(article: Article) -> None:
    store(Target("/about/", "", "", "", ""), 2, age=0)
    for url in (f"{JSON}?url=/about/", f"{SVG}?url=/about/"):
        response = Client().get(url)
        assert response["Cache-Control"] == "public, max-age=300"
        assert "Cookie" not in response.get("Vary", "")
        assert Client().get(url, headers={"if-none-match": response["ETag"]}).status_code == 304
        with override_settings(PAGEVIEW_COUNTER_MAX_AGE=30):
            assert Client().get(url)["Cache-Control"] == "public, max-age=30"
    assert Client().get(f"{JSON}?url=/about/")["Access-Control-Allow-Origin"] == "*"
    assert Client().post(f"{JSON}?url=/about/").status_code == 405


def test_counters_are_not_counted_as_page_views(article: Article) -> None:
    # Browsers' requests through the middleware, with the default settings.
    visit(f"/articles/{article.pk}/", 1)
    calls: list[Request] = [("GET", f"{SVG}?url=/articles/{article.pk}/", {})] * 3
    assert {r.status_code for r in asgi_requests(calls)} == {200}
    flush()
    assert PageView.get_view_count() == 1


# -- template tags -------------------------------------------------------------------------


def render(source: str, **context: Any) -> str:
    return Template("{% load pageview_tags %}" + source).render(Context(context))


def test_the_tag_embeds_the_badge_that_shows_the_count(article: Article) -> None:
    visit(f"/articles/{article.pk}/", 2)
    html = render("{% pageview_counter article %}", article=article)
    src = f"{reverse('pageviews:counter-svg')}?model=tests.article&amp;pk={article.pk}"
    assert html == f'<img src="{src}" alt="Page views" height="20" loading="lazy">'
    badge_svg = Client().get(src.replace("&amp;", "&"))
    assert ElementTree.fromstring(badge_svg.content).get("aria-label") == "2 views"

    assert render("{% pageview_counter '/about' %}") == (
        '<img src="/pageviews/counter.svg?url=%2Fabout%2F" alt="Page views" height="20" '
        'loading="lazy">'
    )
    since = render(
        "{% pageview_counter_url article since='2026-01-02' format='json' %}", article=article
    )
    assert (
        since
        == f"/pageviews/counter.json?model=tests.article&amp;pk={article.pk}&amp;since=2026-01-02"
    )
    assert render("{% pageview_counter_url '/about/' since=day %}", day=date(2025, 5, 1)) == (
        "/pageviews/counter.svg?url=%2Fabout%2F&amp;since=2025-05-01"
    )


def test_the_tag_for_the_current_page() -> None:
    def on(path: str) -> str:
        request = RequestFactory().get(path)
        return Template("{% load pageview_tags %}{% pageview_counter %}").render(
            Context({"request": request})
        )

    assert 'src="/pageviews/counter.svg?url=%2Farticles%2F5%2F"' in on("/articles/5/")
    assert on("/not-public/") == ""  # a base template may ask on every page


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% pageview_counter '/private/' %}", "'url:/private/' is not opted in"),
        ("{% pageview_counter doc %}", "is not opted in"),
        ("{% pageview_counter unsaved %}", "an unsaved object has no counter"),
        ("{% pageview_counter 5 %}", "takes a saved object or a URL path"),
        ("{% pageview_counter '/about/' since='soon' %}", "since must be a date"),
        ("{% pageview_counter_url '/about/' format='png' %}", "format must be 'svg' or 'json'"),
        ("{% pageview_counter %}", "reads the current request"),
    ],
)
def test_the_tag_refuses_misconfigurations(source: str, message: str) -> None:
    doc = Document.objects.create(code="d")
    with pytest.raises(TemplateSyntaxError, match=message):
        render(source, doc=doc, unsaved=Article(title="x", slug="x"))


@override_settings(ROOT_URLCONF="tests.urls_without_pageviews")
def test_the_tag_says_when_the_urls_are_missing() -> None:
    with pytest.raises(TemplateSyntaxError, match="include\\('django_pageviews.urls'\\)"):
        render("{% pageview_counter '/about/' %}")
