"""The stats API, the public counters and the dashboard, used as a hostile or careless
caller would: through Django's test client, on every database, with Redis up or stopped.

The first tests are the bugs this found (each failed before its fix); the rest are attacks
that held, kept so that they keep holding."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from django_pageviews import stats
from django_pageviews.api.tokens import mint
from django_pageviews.counter.badge import badge
from django_pageviews.events import Target
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from django_pageviews.subjects import Subject
from tests.history import article_target, days_ago, store, visit
from tests.models import Article, Document
from tests.redis_server import PrivateRedis
from tests.test_api import DAILY, TOP_OBJECTS, TOP_PAGES, TOP_VIEWS, TOTAL, bearer, user
from tests.test_dashboard import PAGEVIEW_TABLE

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "/pageviews/counter.json"
SVG = "/pageviews/counter.svg"
DASHBOARD = "/admin/django_pageviews/pageviewsdashboard/"
NOT_FOUND = {"error": "Not found."}
ALEF = "%D7%90"  # a right-to-left letter, percent-encoded
BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"}


@pytest.fixture
def article() -> Article:
    return Article.objects.create(title="First", slug="first")


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(user("staff"))
    return client


def answer(client: Client, url: str, **headers: str) -> tuple[int, Any]:
    response = client.get(url, headers=headers)
    return response.status_code, json.loads(response.content)


def render(source: str, **context: Any) -> str:
    return Template("{% load pageview_tags %}" + source).render(Context(context))


# -- bugs found ----------------------------------------------------------------------------


def test_a_nul_in_a_text_primary_key_is_404_not_500(staff: Client) -> None:
    # PostgreSQL refuses NUL in text: the lookup raised DataError, a 500 to anyone who
    # could name the model (a token holder, or anybody for a public counter).
    token = bearer(mint(["object:sessions.session:a\x00b"], timedelta(minutes=5)))
    assert answer(Client(), f"{TOTAL}?model=sessions.session&pk=a%00b", **token) == (
        404,
        NOT_FOUND,
    )
    assert answer(staff, f"{DAILY}?model=sessions.session&pk=%00", **{}) == (404, NOT_FOUND)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["sessions.session"]):
        for base in (JSON, SVG):
            assert answer(Client(), f"{base}?model=sessions.session&pk=x%00") == (404, NOT_FOUND)


def test_the_counter_tag_takes_a_datetime_since(article: Article) -> None:
    # {% pageview_counter article since=article.published %} with a DateTimeField: the
    # badge's URL carried the full timestamp, which the counter refuses (400): a broken
    # image on every page. The day is the site's local day of that moment.
    store(article_target(article), 4, age=3)
    store(article_target(article), 2, age=1)
    late_evening = datetime.combine(days_ago(3), datetime.min.time()).replace(
        hour=23, minute=30, tzinfo=UTC
    )
    tokyo_day = days_ago(3) + timedelta(days=1)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["tests.article"], TIME_ZONE="Asia/Tokyo"):
        # 23:30 UTC is the next morning in Tokyo.
        html = render(
            "{% pageview_counter article since=when %}", article=article, when=late_evening
        )
        src = re.search(r'src="([^"]+)"', html)
        assert src is not None
        url = src[1].replace("&amp;", "&")
        assert url.endswith(f"&since={tokyo_day.isoformat()}")
        json_url = render(
            "{% pageview_counter_url article since=when format='json' %}",
            article=article,
            when=late_evening,
        ).replace("&amp;", "&")
        assert answer(Client(), json_url)[1]["views"] == 2
        assert Client().get(url).status_code == 200


def test_basic_auth_in_front_of_the_site_does_not_hide_the_session(
    staff: Client, article: Article
) -> None:
    # A staging site behind a proxy's HTTP Basic auth: every request of the browser carries
    # "Authorization: Basic ...". That is no token: the staff session decides, as in the
    # admin (it was 401 "Send the token as 'Authorization: Bearer <token>'").
    visit(f"/articles/{article.pk}/", 2)
    basic = {"authorization": "Basic c3RhZ2luZzpzZWNyZXQ="}
    assert answer(staff, f"{TOTAL}?url=/articles/{article.pk}/", **basic)[1]["views"] == 2
    assert answer(staff, TOP_PAGES, **basic)[0] == 200
    # Without a session, still nothing; a malformed bearer token still loses to nothing.
    status, body = answer(Client(), TOP_PAGES, **basic)
    assert (status, body) == (401, {"error": "Send the token as 'Authorization: Bearer <token>'."})
    assert answer(staff, TOP_PAGES, authorization="Bearer forged")[0] == 401
    assert answer(staff, TOP_PAGES, authorization="Bearer")[0] == 401


@pytest.mark.parametrize(
    ("mode", "pattern", "query"),
    [
        ("append", "/about", "url=/about"),
        ("append", "/about", "url=/about/"),
        ("strip", "/about/", "url=/about/"),
        ("strip", "/docs/*/", "url=/docs/intro/"),
    ],
)
def test_a_counter_pattern_follows_the_trailing_slash_rule(
    mode: str, pattern: str, query: str
) -> None:
    # URLs are stored under PAGEVIEW_TRAILING_SLASH ("/about" as "/about/" when appending):
    # a pattern written the other way never matched, and its page had no counter at all.
    path = query.removeprefix("url=")
    with override_settings(PAGEVIEW_TRAILING_SLASH=mode, PAGEVIEW_PUBLIC_COUNTERS=[pattern]):
        store(Target(Subject.for_url(path).url, "", "", "", ""), 3, age=0)
        assert answer(Client(), f"{JSON}?{query}")[1]["views"] == 3
        assert Client().get(f"{SVG}?{query}").status_code == 200
        assert render("{% pageview_counter_url path %}", path=path).startswith(SVG)
        # Still only that page: its neighbours stay private.
        for other in ("/about-us/", "/aboutx", "/docs"):
            assert answer(Client(), f"{JSON}?url={other}") == (404, NOT_FOUND)


# -- attacks that held ---------------------------------------------------------------------


def test_tokens_do_not_cross_scopes(article: Article) -> None:
    doc = Document.objects.create(code="d")
    store(article_target(article), 5, age=0)
    ten = Article.objects.create(title="Ten", slug="ten")
    by_object = bearer(mint([f"object:tests.article:{article.pk}"], timedelta(minutes=5)))
    by_url = bearer(mint([f"url:/articles/{article.pk}/"], timedelta(minutes=5)))
    refused = (403, {"error": "The token does not grant this."})
    for url in (
        f"{TOTAL}?model=tests.document&pk={doc.pk}",  # another model
        f"{TOTAL}?model=tests.article&pk={ten.pk}",
        f"{TOTAL}?model=tests.article&pk=0{article.pk}",  # the same row, named otherwise
        f"{TOTAL}?url=/articles/{article.pk}/",  # the object's page: another subject
        f"{TOP_OBJECTS}?model=tests.article",
    ):
        assert answer(Client(), url, **by_object) == refused, url
    assert (
        answer(Client(), f"{TOTAL}?model=tests.Article&pk={article.pk}", **by_object)[1]["views"]
        == 5
    )
    for url in (
        f"{TOTAL}?url=/articles/{article.pk}0/",  # a longer path, same start
        f"{TOTAL}?url=/articles/{article.pk}/x/",
        f"{TOTAL}?url=/articles/{article.pk}/?page=2",
        f"{TOTAL}?model=tests.article&pk={article.pk}",
        f"{TOP_PAGES}",
        f"{TOP_VIEWS}",
    ):
        assert answer(Client(), url, **by_url) == refused, url
    assert answer(Client(), f"{TOTAL}?url=/articles/{article.pk}", **by_url)[1]["views"] == 5


def test_tokens_only_count_in_the_bearer_header(article: Article, staff: Client) -> None:
    token = mint(["all"], timedelta(minutes=5))
    # In the query string, a token is no credential (and not a parameter either).
    assert answer(Client(), f"{TOP_PAGES}?token={token}")[0] == 401
    assert answer(staff, f"{TOP_PAGES}?token={token}")[0] == 400
    value, _, signature = token.rpartition(":")
    for bad in (token[:-1], value, token + "A", token.replace(":", ".", 1), f"{token} {token}"):
        status, body = answer(Client(), TOP_PAGES, **bearer(bad))
        assert status == 401 and "results" not in body, bad


def test_parameters_a_hostile_caller_sends_are_refused_or_read_whole(
    staff: Client, article: Article
) -> None:
    visit("/long/caf\u00e9/", 2)
    cases = [
        (f"{TOTAL}?url=/long/caf%C3%A9/", 200),
        (f"{TOTAL}?url=/long/caf%C3%A9", 200),  # the slash appended, as when tracked
        (f"{TOTAL}?url=/long/caf%25C3%25A9/", 200),  # another (literal) path: no views
        (f"{TOTAL}?url=/{ALEF * 1999}", 200),  # a right-to-left path at the cap
        (f"{TOTAL}?url=/{ALEF * 2000}", 400),
        (f"{TOTAL}?url=/x/&since=0001-01-01", 200),
        (f"{TOTAL}?url=/x/&since=2026-02-30", 400),
        (f"{TOTAL}?url=/x/&since=+2026-01-01", 400),
        (f"{DAILY}?url=/x/&days=366", 200),
        (f"{DAILY}?url=/x/&days=9999999999999999999999", 400),
        (f"{DAILY}?url=/x/&days=%EF%BC%93", 400),  # a fullwidth digit
        (f"{TOP_PAGES}?limit=100&days=366", 200),
        (f"{TOP_PAGES}?limit=0", 400),
        (f"{TOP_PAGES}?limit=-5", 400),
        (f"{TOP_PAGES}?limit=5&limit=5", 400),
        (f"{TOP_PAGES}?{'&'.join(f'a{i}=1' for i in range(1200))}", 400),  # too many fields
        (f"{TOP_OBJECTS}?model=auth.permission", 200),  # no views: an empty list
        (f"{TOP_OBJECTS}?model=django_pageviews.pageviewsdashboard", 200),  # a proxy
        (f"{TOP_OBJECTS}?model=tests", 404),
        (f"{TOP_OBJECTS}?model=a.b.c", 404),
        (f"{TOTAL}?model=tests.article&pk=99999999999999999999999", 404),
        (f"{TOTAL}?model=tests.article&pk=1.0", 404),
        (f"{TOTAL}?model=tests.article&pk=%00", 404),
        (f"{TOTAL}?model=tests.document&pk=%F0%9F%98%80", 404),
        (f"{TOTAL}?view=%00%E2%80%AE", 200),
    ]
    for url, expected in cases:
        response = staff.get(url)
        assert response.status_code == expected, url[:80]
        assert response["Content-Type"] == "application/json", url[:80]
    assert answer(staff, f"{TOTAL}?url=/long/caf%C3%A9")[1]["views"] == 2
    assert answer(staff, f"{TOTAL}?url=/long/caf%25C3%25A9/")[1]["views"] == 0
    assert len(answer(staff, f"{DAILY}?url=/long/caf%C3%A9/&days=366")[1]["daily"]) == 366


def test_a_counter_opts_in_nothing_beyond_its_pattern() -> None:
    for path, views in (("/blog/post/", 3), ("/blog-secret/", 7), ("/BLOG/post/", 9)):
        store(Target(path, "", "", "", ""), views, age=0)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["/blog/*"]):
        assert answer(Client(), f"{JSON}?url=/blog/post/")[1]["views"] == 3
        assert answer(Client(), f"{JSON}?url=/blog/post")[1]["views"] == 3
        for query in (
            "url=/blog-secret/",
            "url=/blog-secret",
            "url=/BLOG/post/",
            "url=/blog-secret/?/blog/x",
            "url=//blog/post/",
            "url=/%62log-secret/",
            "model=tests.article&pk=1",
        ):
            for base in (JSON, SVG):
                response = Client().get(f"{base}?{query}")
                assert (response.status_code, json.loads(response.content)) == (404, NOT_FOUND)
                assert b"7" not in response.content and b"9" not in response.content
        # A smuggled second subject is refused before anything is read.
        assert answer(Client(), f"{JSON}?url=/blog/post/&url=/blog-secret/")[0] == 400


def test_caching_headers_hold_for_head_and_conditional_requests(
    staff: Client, article: Article
) -> None:
    store(article_target(article), 1234, age=0)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["tests.article"]):
        counter = f"{SVG}?model=tests.article&pk={article.pk}"
        full = Client().get(counter)
        head = Client().head(counter)
        assert (head.status_code, head.content, head["ETag"]) == (200, b"", full["ETag"])
        assert head["Cache-Control"] == full["Cache-Control"] == "public, max-age=300"
        weak = f"W/{full['ETag']}"
        for tag in (full["ETag"], weak, "*", f'"other", {full["ETag"]}'):
            again = Client().get(counter, headers={"if-none-match": tag})
            assert (again.status_code, again["Cache-Control"]) == (304, "public, max-age=300")
        assert Client().get(counter, headers={"if-none-match": '"other"'}).status_code == 200
        assert "Cookie" not in staff.get(counter).get("Vary", "")
    api = f"{TOTAL}?model=tests.article&pk={article.pk}"
    first = staff.get(api)
    again = staff.get(api, headers={"if-none-match": first["ETag"]})
    assert (again.status_code, again["Cache-Control"]) == (304, "private, max-age=60")
    assert {"Authorization", "Cookie"} <= {v.strip() for v in again["Vary"].split(",")}


def test_no_endpoint_is_counted_or_reads_the_raw_table(article: Article) -> None:
    visit(f"/articles/{article.pk}/", 2)
    admin = Client()
    admin.force_login(user("boss"))
    token = bearer(mint(["all"], timedelta(minutes=5)))
    urls = [
        f"{DAILY}?url=/articles/{article.pk}/",
        f"{DAILY}?view=article-detail&days=366",
        f"{TOTAL}?model=tests.article&pk={article.pk}&since=2020-01-01",
        f"{TOP_PAGES}?days=7",
        f"{TOP_VIEWS}",
        f"{TOP_OBJECTS}?model=tests.article",
        f"{JSON}?url=/articles/{article.pk}/",
        f"{SVG}?model=tests.article&pk={article.pk}",
        DASHBOARD,
        f"{DASHBOARD}?start=2025-12-01&end=2026-11-01",
    ]
    with override_settings(
        PAGEVIEW_PUBLIC_COUNTERS=["tests.article", "/articles/*"], PAGEVIEW_EXCLUDE_ADMIN=False
    ):
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = admin.get(url, headers={**BROWSER, **token})
                assert response.status_code == 200, url
                assert admin.head(url, headers={**BROWSER, **token}).status_code == 200
                assert admin.get(
                    url, headers={**BROWSER, **token, "if-none-match": response.get("ETag", "")}
                ).status_code in (200, 304)
            assert not [q for q in queries.captured_queries if PAGEVIEW_TABLE.search(q["sql"])]
        flush()
    assert PageView.get_view_count() == 2


def test_every_endpoint_answers_with_redis_stopped(
    private_redis: PrivateRedis, staff: Client, article: Article
) -> None:
    store(article_target(article), 3, age=2)  # written
    visit(f"/articles/{article.pk}/", 2)  # pending in Redis
    reads: dict[str, Callable[[Any], int]] = {
        f"{TOTAL}?url=/articles/{article.pk}/": lambda body: body["views"],
        f"{TOTAL}?model=tests.article&pk={article.pk}&days=7": lambda body: body["views"],
        f"{DAILY}?view=article-detail&days=3": lambda body: body["total"],
        f"{TOP_PAGES}": lambda body: body["results"][0]["views"],
        f"{TOP_VIEWS}?days=30": lambda body: body["results"][0]["views"],
        f"{TOP_OBJECTS}?model=tests.article": lambda body: body["results"][0]["views"],
        f"{JSON}?model=tests.article&pk={article.pk}": lambda body: body["views"],
    }
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["tests.article"]):
        assert {url: read(answer(staff, url)[1]) for url, read in reads.items()} == dict.fromkeys(
            reads, 5
        )
        private_redis.stop()
        for url, read in reads.items():
            before = stats.snapshot().get(stats.READ_ERROR, 0)
            status, body = answer(staff, url)
            # The written views only, said in the logs and counted.
            assert (status, read(body)) == (200, 3), url
            assert stats.snapshot().get(stats.READ_ERROR, 0) == before + 1, url
        assert Client().get(f"{SVG}?model=tests.article&pk={article.pk}").status_code == 200
        before = stats.snapshot().get(stats.READ_ERROR, 0)
        page = staff.get(DASHBOARD)
        assert page.status_code == 200 and b"Redis is not reachable" in page.content
        assert stats.snapshot().get(stats.READ_ERROR, 0) > before


@pytest.mark.parametrize(
    ("query", "bars"),
    [
        ("start=0001-01-01&end=0001-01-01", 1),  # the first day there is
        ("start=0001-01-01&end=0001-12-31", 365),
        ("start=9999-12-31&end=9999-12-31", 30),  # after today: refused, 30 days shown
        ("start=2026-11-02&end=2026-11-01", 30),  # backwards
        ("start=2000-01-01&end=2026-11-01", 30),  # years
        ("start=2026-02-30&end=2026-03-01", 30),  # no such day
        ("start=x&end=%00", 30),
        ("start=2026-11-01", 30),
    ],
)
def test_the_dashboard_takes_any_range_it_is_given(staff: Client, query: str, bars: int) -> None:
    response = staff.get(f"{DASHBOARD}?{query}")
    assert response.status_code == 200
    assert response.content.count(b'class="pv-bar"') == bars


def test_huge_numbers_render_everywhere(staff: Client, article: Article) -> None:
    # A day's row holds up to 2**31 - 1 views; totals and sums go past 2**32.
    for age in (0, 1, 2):
        store(article_target(article), 2_000_000_000, age=age)
    with override_settings(PAGEVIEW_PUBLIC_COUNTERS=["tests.article"]):
        body = answer(Client(), f"{JSON}?model=tests.article&pk={article.pk}")[1]
        assert (body["views"], body["display"]) == (6_000_000_000, "6B")
        svg = Client().get(f"{SVG}?model=tests.article&pk={article.pk}").content.decode()
        assert 'aria-label="6,000,000,000 views"' in svg and ">6B</text>" in svg
    assert answer(staff, f"{TOP_PAGES}?limit=1")[1]["results"][0]["views"] == 6_000_000_000
    page = staff.get(DASHBOARD).content.decode()
    assert 'data-views="6000000000"' in page  # 7 and 30 days
    assert ">2,000,000,000<" in page  # the chart's round top
    # Beyond int64, the badge still says something short.
    assert ">100000000T</text>" in badge(10**20)
