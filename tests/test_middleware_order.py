"""Where PageViewMiddleware sits in MIDDLEWARE: below a cache middleware that answers
cached pages, those pages are not counted (warning W004, shown here for real); above or
below AuthenticationMiddleware, the logged-in user is the visitor either way (no warning
needed: the user is read on the way out)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.test import Client, override_settings

from django_pageviews.checks import check_middleware_order
from django_pageviews.middleware import MIDDLEWARE_PATH as MIDDLEWARE
from django_pageviews.models import PageView
from tests.conftest import BROWSER_UA, asgi_get, distinct_visitors
from tests.settings import MIDDLEWARE as PROJECT

pytestmark = pytest.mark.django_db(transaction=True)

UPDATE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH = "django.middleware.cache.FetchFromCacheMiddleware"
CACHE = "django.middleware.cache.CacheMiddleware"
OURS_BELOW_FETCH = [UPDATE, *PROJECT[:-1], FETCH, MIDDLEWARE]
OURS_ABOVE_FETCH = [UPDATE, *PROJECT, FETCH]


def warnings() -> list[str]:
    return [m.id or "" for m in check_middleware_order()]


@pytest.mark.parametrize(
    "middleware, expected",
    [
        (PROJECT, []),
        (OURS_ABOVE_FETCH, []),
        (OURS_BELOW_FETCH, ["django_pageviews.W004"]),
        ([CACHE, MIDDLEWARE], ["django_pageviews.W004"]),  # both in one
        ([MIDDLEWARE, CACHE], []),
        (["tests.middleware_gone.Missing", MIDDLEWARE], []),  # Django reports that one
        ([FETCH], []),  # not installed: nothing to say
    ],
)
def test_a_cache_that_answers_above_ours_is_w004(
    middleware: list[str], expected: list[str]
) -> None:
    with override_settings(MIDDLEWARE=middleware):
        assert warnings() == expected
        assert [m.id for m in run_checks() if m.id == "django_pageviews.W004"] == expected


@pytest.mark.parametrize("middleware, counted", [(OURS_ABOVE_FETCH, 3), (OURS_BELOW_FETCH, 1)])
def test_what_w004_warns_of(middleware: list[str], counted: int) -> None:
    """Three visitors, one page cached by the site-wide cache: counted once when the cache
    answers above the page-view middleware."""
    backend = "django.core.cache.backends.locmem.LocMemCache"
    caches = {"default": {"BACKEND": backend, "LOCATION": f"w004-{counted}"}}  # its own
    with override_settings(MIDDLEWARE=middleware, CACHES=caches, CACHE_MIDDLEWARE_SECONDS=60):
        for headers in distinct_visitors(3):
            assert asgi_get("/plain/", **headers).text == "plain"
        assert PageView.get_view_count(url="/plain/") == counted


@pytest.mark.parametrize(
    "middleware", [PROJECT, [MIDDLEWARE, *PROJECT[:-1]]], ids=["below", "above"]
)
def test_the_logged_in_user_is_the_visitor_above_or_below_authentication(
    middleware: list[str],
) -> None:
    """The same user from two browsers within the throttle window counts once; two
    anonymous browsers count twice."""
    user = get_user_model().objects.create_user("reader")
    with override_settings(MIDDLEWARE=middleware):
        client = Client()
        client.force_login(user)
        for browser in ("Firefox/120.0", "Chrome/120.0"):
            response = client.get("/whoami/", HTTP_USER_AGENT=f"{BROWSER_UA} {browser}")
            assert response.content == b"reader"
        anonymous = Client()
        for browser in ("Firefox/120.0", "Chrome/120.0"):
            anonymous.get("/whoami/", HTTP_USER_AGENT=f"{BROWSER_UA} {browser}")
    assert PageView.get_view_count(url="/whoami/") == 1 + 2
