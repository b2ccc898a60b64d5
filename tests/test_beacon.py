"""The beacon for cached pages: a page with {% pageview_beacon %} counts once, through
its beacon, on both pipelines, whether Django renders it or a page cache serves a copy;
forged, expired, misplaced, oversized, flooding, robotic and do-not-track beacons count
nothing, and no beacon, counted or refused, makes a database query."""

from __future__ import annotations

import html
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.core import signing
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from django_pageviews import queries, stats
from django_pageviews.beacon.marks import BEACON_HEADER
from django_pageviews.beacon.snippet import ATTRIBUTE, SCRIPT, SCRIPT_HASH
from django_pageviews.beacon.tokens import MAX_TOKEN_LENGTH, SALT, mint, verify
from django_pageviews.beacon.views import MAX_BODY_BYTES, MAX_QUERY_LENGTH
from django_pageviews.events import (
    PK,
    SLUG_MAX_LENGTH,
    VIEW_NAME_MAX_LENGTH,
    Target,
    stored_url,
)
from django_pageviews.recorder import flush
from tests.conftest import BROWSER_UA, asgi_requests, wsgi_request
from tests.history import article_target
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

BEACON = "/pageviews/beacon/"
BEACON_PATTERN = re.compile(f'<script {ATTRIBUTE}="([^"]+)"')
DAY = 86_400


@pytest.fixture
def article() -> Article:
    return Article.objects.create(title="Cached", slug="cached")


def beacon_url(page: str) -> str:
    """The beacon's address in a page's HTML (token included)."""
    found = BEACON_PATTERN.search(page)
    assert found is not None, page
    return html.unescape(found.group(1))


def fired(url: str, path: str, query: str = "") -> str:
    """The address the script sends: its own, with the page's path and query string."""
    return f"{url}&p={quote(path, safe='')}&q={quote(query, safe='')}"


def token_for(target: Target) -> str:
    return f"{BEACON}?t={mint(target)}"


def send(method: str, url: str, **headers: str) -> httpx.Response:
    """One beacon through the real WSGI handler and every middleware, asserting that it
    made no database query."""
    with CaptureQueriesContext(connection) as queries_made:
        response = wsgi_request(method, url, **headers)
    assert queries_made.captured_queries == []
    return response


def views_of(target: Target) -> int:
    flush()
    return queries.get_view_count(url=target.url)


def page(path: str, **headers: str) -> httpx.Response:
    headers.setdefault("user-agent", BROWSER_UA)
    response = asgi_requests([("GET", path, headers)])[0]
    assert response.status_code == 200
    return response


# -- a page with the tag counts once -----------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])  # sendBeacon, the <noscript> image
def test_a_valid_beacon_counts_one_view_of_its_target(
    pipeline: str, article: Article, method: str
) -> None:
    target = article_target(article)
    url = token_for(target)
    if method == "POST":
        response = send("POST", fired(url, target.url))
    else:
        response = send("GET", url, referer=f"http://testserver{target.url}")
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert views_of(target) == 1
    assert queries.get_view_count(obj=article) == 1
    assert queries.get_view_count(view_name="article-detail") == 1


def test_a_page_with_the_tag_counts_once_after_its_beacon_fires(
    pipeline: str, article: Article
) -> None:
    path = f"/beacon/articles/{article.pk}/"
    left = stats.snapshot().get(stats.BEACON_PAGE, 0)
    response = page(path)
    assert response.headers[BEACON_HEADER] == "1"
    assert stats.snapshot()[stats.BEACON_PAGE] == left + 1
    target = Target(path, "beacon-article", "tests.article", PK, str(article.pk))
    assert views_of(target) == 0  # the middleware left the page to its beacon
    assert send("POST", fired(beacon_url(response.text), path)).status_code == 204
    assert views_of(target) == 1
    assert queries.get_view_count(obj=article) == 1


def test_the_tag_names_the_object_it_is_given(pipeline: str, article: Article) -> None:
    path = f"/beacon/objects/{article.pk}/"
    response = wsgi_request("GET", path)
    assert response.status_code == 200 and BEACON_HEADER in response.headers
    url = beacon_url(response.text)
    assert verify(url.split("t=", 1)[1]) == Target(
        path, "beacon-object", "tests.article", PK, str(article.pk)
    )
    assert send("POST", fired(url, path)).status_code == 204
    assert views_of(verify(url.split("t=", 1)[1])) == 1
    assert queries.get_view_count(obj=article) == 1


PAGE_CACHE = [
    "django.middleware.cache.UpdateCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_pageviews.middleware.PageViewMiddleware",
    "django.middleware.cache.FetchFromCacheMiddleware",
]


# The page-view middleware above UpdateCacheMiddleware: the cache stores the page before
# the middleware sets its header, so a copy is known by the beacon in its content.
OURS_ABOVE_UPDATE = [PAGE_CACHE[4], *PAGE_CACHE[:4], PAGE_CACHE[5]]


@pytest.fixture(params=[PAGE_CACHE, OURS_ABOVE_UPDATE], ids=["documented", "ours-above-update"])
def page_cache(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"beacon-{time.monotonic_ns()}",
        }
    }
    middleware = request.param
    with override_settings(MIDDLEWARE=middleware, CACHES=caches, CACHE_MIDDLEWARE_SECONDS=600):
        yield middleware


def test_copies_served_by_the_page_cache_count_once_each(
    pipeline: str, article: Article, page_cache: list[str]
) -> None:
    """Whichever side of UpdateCacheMiddleware the page-view middleware sits, each copy the
    page cache serves is left to its beacon: counted once, by the beacon."""
    path = f"/beacon/articles/{article.pk}/"
    target = Target(path, "beacon-article", "tests.article", PK, str(article.pk))
    loads = []
    for visitor in range(3):
        ua = f"{BROWSER_UA} visitor/{visitor}"
        with CaptureQueriesContext(connection) as made:
            response = wsgi_request("GET", path, **{"user-agent": ua})
        assert response.status_code == 200
        # The stored copy has the header only when the cache sits above the middleware.
        stored_marked = page_cache == PAGE_CACHE or visitor == 0
        assert (response.headers.get(BEACON_HEADER) == "1") == stored_marked
        assert (len(made.captured_queries) > 0) == (visitor == 0)  # then served by the cache
        loads.append(response.text)
        assert views_of(target) == visitor
        beacon = send("POST", fired(beacon_url(response.text), path), **{"user-agent": ua})
        assert beacon.status_code == 204
        assert views_of(target) == visitor + 1
    assert loads[1] == loads[2] == loads[0]  # the same copy, the same token


@pytest.mark.parametrize("pipeline", ["in-process", "redis"], indirect=True)
def test_copies_served_by_cache_page_count_once_each(pipeline: str, article: Article) -> None:
    """``cache_page`` caches inside the view, before the middleware marks the response:
    the copies it serves carry the beacon but not the header."""
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"cache-page-{time.monotonic_ns()}",
        }
    }
    path = f"/beacon/cached/{article.pk}/"
    target = Target(path, "beacon-cached-article", "tests.article", PK, str(article.pk))
    with override_settings(CACHES=caches):
        for visitor in range(3):
            ua = f"{BROWSER_UA} visitor/{visitor}"
            with CaptureQueriesContext(connection) as made:
                response = wsgi_request("GET", path, **{"user-agent": ua})
            assert (len(made.captured_queries) > 0) == (visitor == 0)  # then a cached copy
            assert views_of(target) == visitor
            beacon = send("POST", fired(beacon_url(response.text), path), **{"user-agent": ua})
            assert beacon.status_code == 204
            assert views_of(target) == visitor + 1


def test_pages_without_the_tag_are_still_counted_by_the_middleware(article: Article) -> None:
    page(f"/articles/{article.pk}/")
    assert views_of(article_target(article)) == 1


# -- refused: nothing counted, no query --------------------------------------------------


def expired_token(target: Target, age: int) -> str:
    """A token issued ``age`` seconds ago: signing's own timestamp, set in the past."""

    class IssuedEarlier(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - age)

    return IssuedEarlier(salt=SALT).sign_object(list(target), compress=True)


def refused(target: Target, method: str, url: str, status: int, **headers: str) -> None:
    before = stats.snapshot().get(stats.BEACON_REFUSED, 0)
    response = send(method, url, **headers)
    assert response.status_code == status, url
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert stats.snapshot()[stats.BEACON_REFUSED] == before + 1
    assert views_of(target) == 0


def test_forged_and_malformed_tokens_are_refused(pipeline: str, article: Article) -> None:
    target = article_target(article)
    good = mint(target)
    value, signature = good.rsplit(":", 1)
    other = article_target(Article.objects.create(title="Other", slug="other"))
    for token in (
        f"{value}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # altered signature
        f"{mint(other).rsplit(':', 1)[0]}:{signature}",  # another target under this signature
        signing.dumps(list(target), salt="django_pageviews.api.token", compress=True),
        signing.dumps(list(target), salt=SALT, key="another site's secret", compress=True),
        signing.dumps(["/a/", "", ""], salt=SALT),  # signed, but no target
        signing.dumps({"url": target.url}, salt=SALT),
        "not-a-token",
        "",
        "a" * (MAX_TOKEN_LENGTH + 1),
    ):
        refused(target, "POST", f"{BEACON}?t={quote(token)}&p={quote(target.url)}", 403)
    refused(target, "POST", f"{BEACON}?p={quote(target.url)}", 400)  # no token


def test_expired_tokens_are_refused(pipeline: str, article: Article) -> None:
    target = article_target(article)
    late = expired_token(target, DAY + 5)
    refused(target, "POST", f"{BEACON}?t={late}&p={quote(target.url)}", 403)
    with override_settings(PAGEVIEW_BEACON_MAX_AGE=3600):
        refused(target, "POST", f"{BEACON}?t={expired_token(target, 3605)}", 403)
    # Within its age, an old token still counts: a page cache's copy is as old as that.
    assert send("POST", f"{BEACON}?t={expired_token(target, DAY - 60)}").status_code == 204
    assert views_of(target) == 1


def test_a_token_used_on_another_page_is_refused(article: Article) -> None:
    target = article_target(article)
    url = token_for(target)
    refused(target, "POST", fired(url, "/articles/999/"), 403)
    refused(target, "GET", url, 403, referer="http://testserver/articles/999/")
    refused(target, "GET", url, 403, referer="https://elsewhere.example/")  # origin only
    refused(target, "POST", fired(url, "articles/1/"), 400)  # not a path
    assert views_of(Target("/articles/999/", "", "", "", "")) == 0
    # The same page under the trailing-slash rule and ignored query parameters is its own.
    path = target.url.rstrip("/")
    assert send("POST", fired(url, path, "utm_source=x")).status_code == 204
    assert views_of(target) == 1


def test_the_longest_targets_fit_the_caps(pipeline: str) -> None:
    """A page with the longest URL, view name and slug the middleware stores, in letters
    that JSON escapes: its token and its path, percent-encoded twice by the script, pass."""
    letters = random.Random(12)
    cjk = "".join(chr(letters.randint(0x4E00, 0x9FFF)) for _ in range(1000))
    target = Target(stored_url("/" + cjk), cjk[:VIEW_NAME_MAX_LENGTH], "tests.article",
                    "slug", cjk[:SLUG_MAX_LENGTH])  # fmt: skip
    url = token_for(target)
    assert len(url) > 2048  # more than a cap sized for ASCII pages would take
    path = quote(target.url)  # location.pathname: percent-encoded UTF-8
    assert send("POST", fired(url, path)).status_code == 204
    assert views_of(target) == 1


def test_without_a_page_to_compare_the_token_decides(article: Article) -> None:
    """No path and no Referer (a no-referrer policy): the token's own page counts."""
    target = article_target(article)
    assert send("GET", token_for(target)).status_code == 204
    assert views_of(target) == 1


def test_oversized_and_malformed_requests_are_refused(article: Article) -> None:
    target = article_target(article)
    url = fired(token_for(target), target.url)
    refused(target, "POST", f"{url}&q={'x' * MAX_QUERY_LENGTH}", 400)
    refused(target, "POST", f"{url}&x=1", 400)  # unknown parameter
    refused(target, "POST", f"{token_for(target)}&t={mint(target)}", 400)  # twice
    refused(target, "POST", f"{BEACON}?{'&'.join(['t=1'] * 50)}", 400)  # too many fields
    before = stats.snapshot().get(stats.BEACON_REFUSED, 0)
    with CaptureQueriesContext(connection) as made:
        response = wsgi_request_with_body(url, b"x" * (MAX_BODY_BYTES + 1))
    assert (response.status_code, made.captured_queries) == (413, [])
    assert stats.snapshot()[stats.BEACON_REFUSED] == before + 1
    assert wsgi_request_with_body(url, b"").status_code == 204  # sendBeacon without data
    assert views_of(target) == 1


def wsgi_request_with_body(url: str, body: bytes) -> httpx.Response:
    transport = httpx.WSGITransport(app=WSGIHandler())
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        return client.post(url, content=body, headers={"user-agent": BROWSER_UA})


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405(article: Article, method: str) -> None:
    target = article_target(article)
    before = stats.snapshot().get(stats.BEACON_REFUSED, 0)
    response = send(method, fired(token_for(target), target.url))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert stats.snapshot()[stats.BEACON_REFUSED] == before + 1
    assert views_of(target) == 0


# -- admitted by the middleware's rules only ---------------------------------------------


def test_a_flood_from_one_visitor_counts_once_per_throttle_window(
    pipeline: str, article: Article
) -> None:
    target = article_target(article)
    throttled = stats.snapshot().get(stats.SKIP_THROTTLED, 0)
    # Tokens issued at different times all name the same page for the same visitor.
    urls = [fired(f"{BEACON}?t={expired_token(target, age)}", target.url) for age in range(50)]
    assert {send("POST", url).status_code for url in urls} == {204}
    assert {r.status_code for r in asgi_requests([("POST", u, {}) for u in urls])} == {204}
    assert views_of(target) == 1
    assert stats.snapshot()[stats.SKIP_THROTTLED] - throttled == 99
    # Another visitor is another view; the same one after the window too.
    assert send("POST", urls[0], **{"user-agent": f"{BROWSER_UA} other"}).status_code == 204
    assert views_of(target) == 2
    with override_settings(PAGEVIEW_THROTTLE_SECONDS=0):
        assert send("POST", urls[0]).status_code == 204
        assert views_of(target) == 3


@pytest.mark.parametrize(
    "headers",
    [
        {"user-agent": "curl/8.5.0"},
        {"user-agent": "python-requests/2.32.3"},
        {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
        {"user-agent": ""},
        {"sec-purpose": "prefetch;prerender"},
    ],
    ids=["curl", "requests", "googlebot", "no-agent", "prefetch"],
)
def test_bots_and_prefetches_count_nothing(
    pipeline: str, article: Article, headers: dict[str, str]
) -> None:
    target = article_target(article)
    url = fired(token_for(target), target.url)
    assert send("POST", url, **headers).status_code == 204
    assert send("GET", url, **headers).status_code == 204
    assert views_of(target) == 0


@pytest.mark.parametrize("header", ["dnt", "sec-gpc"])
def test_do_not_track_and_gpc_when_honoured(pipeline: str, article: Article, header: str) -> None:
    target = article_target(article)
    url = fired(token_for(target), target.url)
    with override_settings(PAGEVIEW_RESPECT_DNT=True):
        assert send("POST", url, **{header: "1"}).status_code == 204
        assert views_of(target) == 0
    assert send("POST", url, **{header: "1"}).status_code == 204  # not honoured: counted
    assert views_of(target) == 1


def test_excluded_addresses_count_nothing(article: Article) -> None:
    target = article_target(article)
    with override_settings(PAGEVIEW_EXCLUDE_IP_ADDRESSES=["127.0.0.0/8"]):
        assert send("POST", fired(token_for(target), target.url)).status_code == 204
    assert views_of(target) == 0


def test_a_failure_while_counting_answers_204_and_is_counted(
    article: Article, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_pageviews.beacon import views

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "counted_event", broken)
    errors = stats.snapshot().get(stats.SKIP_ERROR, 0)
    target = article_target(article)
    assert send("POST", fired(token_for(target), target.url)).status_code == 204
    assert stats.snapshot()[stats.SKIP_ERROR] == errors + 1


# -- the tag -----------------------------------------------------------------------------


def render(source: str, path: str = "/articles/5/", **context: Any) -> str:
    request = RequestFactory().get(path)
    return Template("{% load pageview_tags %}" + source).render(
        Context({"request": request, **context})
    )


def test_the_tag_emits_one_constant_script_and_a_noscript_image() -> None:
    out = render("{% pageview_beacon %}")
    url = beacon_url(out)
    token = url.split("t=", 1)[1]
    assert verify(token) == Target("/articles/5/", "", "", "", "")
    escaped = html.escape(url)
    assert out == (
        f'<script {ATTRIBUTE}="{escaped}">{SCRIPT}</script><noscript><img src="{escaped}" '
        'width="1" height="1" alt="" referrerpolicy="same-origin"></noscript>'
    )
    assert "sendBeacon" in SCRIPT and "http" not in SCRIPT  # no other host, no CDN
    docs = Path(__file__).resolve().parent.parent / "docs" / "beacon.md"
    assert SCRIPT_HASH in docs.read_text(
        encoding="utf-8"
    )  # the hash a Content-Security-Policy allows
    nonce = render("{% pageview_beacon nonce='abc' %}")
    assert f'<script {ATTRIBUTE}="' in nonce and '" nonce="abc">' in nonce


def test_the_tag_renders_nothing_on_pages_never_counted() -> None:
    assert render("{% pageview_beacon %}", path="/static/app.css") == ""
    assert render("{% pageview_beacon %}", path="/admin/") == ""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% pageview_beacon missing %}", "takes a saved object"),
        ("{% pageview_beacon unsaved %}", "takes a saved object"),
    ],
)
def test_the_tag_refuses_misconfigurations(source: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        render(source, unsaved=Article(title="x", slug="x"))
    with pytest.raises(TemplateSyntaxError, match="reads the current request"):
        Template("{% load pageview_tags %}{% pageview_beacon %}").render(Context({}))


@override_settings(ROOT_URLCONF="tests.urls_without_pageviews")
def test_the_tag_says_when_the_urls_are_missing() -> None:
    with pytest.raises(TemplateSyntaxError, match="include\\('django_pageviews.urls'\\)"):
        render("{% pageview_beacon %}")
