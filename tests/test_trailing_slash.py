"""PAGEVIEW_TRAILING_SLASH: one page, one URL, stored and read by the same rule."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_pageviews.checks import check_settings
from django_pageviews.manual import record_view
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.paths import normalize_path, normalize_url, trailing_slash_mode
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests, distinct_visitors, wsgi_get

# -- the rule itself ---------------------------------------------------------------------

APPEND_CASES = [
    ("/about", "/about/"),
    ("/about/", "/about/"),
    ("/", "/"),
    ("/a/b", "/a/b/"),
    ("/robots.txt", "/robots.txt"),
    ("/feeds/feed.xml", "/feeds/feed.xml"),
    ("/v1.2/items", "/v1.2/items/"),  # a dot in an earlier segment does not count
    ("/v1.2/", "/v1.2/"),
    ("", ""),  # not a path: an object without get_absolute_url()
    ("https://example.com/about", "https://example.com/about"),
    ("(other URLs)", "(other URLs)"),
]
STRIP_CASES = [
    ("/about/", "/about"),
    ("/about", "/about"),
    ("/", "/"),
    ("//", "/"),
    ("/a//", "/a"),
    ("/robots.txt", "/robots.txt"),
    ("", ""),
]
KEEP_CASES = [("/about", "/about"), ("/about/", "/about/"), ("/", "/"), ("/a//", "/a//")]


@pytest.mark.parametrize(("path", "expected"), APPEND_CASES)
@override_settings(PAGEVIEW_TRAILING_SLASH="append")
def test_append(path: str, expected: str) -> None:
    assert normalize_path(path) == expected
    assert normalize_path(expected) == expected


@pytest.mark.parametrize(("path", "expected"), STRIP_CASES)
@override_settings(PAGEVIEW_TRAILING_SLASH="strip")
def test_strip(path: str, expected: str) -> None:
    assert normalize_path(path) == expected
    assert normalize_path(expected) == expected


@pytest.mark.parametrize(("path", "expected"), KEEP_CASES)
@override_settings(PAGEVIEW_TRAILING_SLASH="keep")
def test_keep(path: str, expected: str) -> None:
    assert normalize_path(path) == expected


def test_unchanged_path_is_the_same_string() -> None:
    path = "/about/"
    assert normalize_path(path) is path


def test_default_follows_append_slash() -> None:
    assert trailing_slash_mode() == "append"  # Django's default APPEND_SLASH = True
    with override_settings(APPEND_SLASH=False):
        assert trailing_slash_mode() == "keep"
        assert normalize_path("/about") == "/about"
    with override_settings(APPEND_SLASH=False, PAGEVIEW_TRAILING_SLASH="append"):
        assert normalize_path("/about") == "/about/"
    with override_settings(APPEND_SLASH=True, PAGEVIEW_TRAILING_SLASH="keep"):
        assert normalize_path("/about") == "/about"
    assert normalize_path("/about") == "/about/"  # the cached mode follows the settings back


def test_only_the_path_before_the_query_string_is_normalised() -> None:
    assert normalize_url("/about?page=2") == "/about/?page=2"
    assert normalize_url("/about/?next=/x") == "/about/?next=/x"
    assert normalize_url("/feed.xml?page=2") == "/feed.xml?page=2"
    with override_settings(PAGEVIEW_TRAILING_SLASH="strip"):
        assert normalize_url("/about/?page=2") == "/about?page=2"
        assert normalize_url("/?page=2") == "/?page=2"


@pytest.mark.parametrize("value", ["yes", "Append", "", True, ["append"]])
def test_bad_value_is_e034(value: object) -> None:
    with override_settings(PAGEVIEW_TRAILING_SLASH=value):
        errors = check_settings()
    assert [e.id for e in errors] == ["django_pageviews.E034"]
    assert "PAGEVIEW_TRAILING_SLASH" in errors[0].msg


@pytest.mark.parametrize("value", [None, "append", "strip", "keep"])
def test_good_values_pass_the_check(value: object) -> None:
    with override_settings(PAGEVIEW_TRAILING_SLASH=value):
        assert check_settings() == []


# -- through real requests ---------------------------------------------------------------


def _daily() -> list[tuple[str, int]]:
    return sorted(PageViewDaily.objects.values_list("url", "views"))


@pytest.mark.django_db(transaction=True)
def test_with_and_without_the_slash_is_one_page(pipeline: str) -> None:
    visitors = distinct_visitors(5)
    for i, headers in enumerate(visitors):
        assert wsgi_get("/both" if i % 2 else "/both/", **headers).status_code == 200
    asgi_requests([("GET", "/both", {})])  # a sixth visitor, through ASGI
    assert PageView.get_view_count(url="/both") == 6
    assert PageView.get_view_count(url="/both/") == 6
    assert flush() == 6
    assert _daily() == [("/both/", 6)]
    assert set(PageView.objects.values_list("url", flat=True)) == {"/both/"}
    assert PageView.get_view_count(url="/both") == 6
    assert PageView.get_view_count(url="/both/") == 6


@pytest.mark.django_db(transaction=True)
def test_the_throttle_sees_one_page() -> None:
    assert wsgi_get("/both").status_code == 200
    assert wsgi_get("/both/").status_code == 200  # same visitor, same page: throttled
    assert PageView.get_view_count(url="/both") == 1
    assert flush() == 1
    assert _daily() == [("/both/", 1)]


@pytest.mark.django_db(transaction=True)
def test_a_file_and_the_root_keep_their_path() -> None:
    assert wsgi_get("/robots.txt").status_code == 200
    assert wsgi_get("/").status_code == 200
    assert PageView.get_view_count(url="/robots.txt") == 1
    assert PageView.get_view_count(url="/") == 1
    assert flush() == 2
    assert _daily() == [("/", 1), ("/robots.txt", 1)]


@pytest.mark.django_db(transaction=True)
@override_settings(PAGEVIEW_TRACK_QUERY_STRING=["page"])
def test_the_kept_query_string_follows_the_normalised_path() -> None:
    visitors = distinct_visitors(2)
    wsgi_get("/both?page=2&utm_source=x", **visitors[0])
    wsgi_get("/both/?page=2", **visitors[1])
    assert PageView.get_view_count(url="/both?page=2") == 2
    assert PageView.get_view_count(url="/both/?page=2") == 2
    assert flush() == 2
    assert _daily() == [("/both/?page=2", 2)]


@pytest.mark.django_db(transaction=True)
@override_settings(APPEND_SLASH=False)
def test_without_append_slash_paths_are_kept_by_default() -> None:
    visitors = distinct_visitors(3)
    wsgi_get("/both", **visitors[0])
    wsgi_get("/both", **visitors[1])
    wsgi_get("/both/", **visitors[2])
    assert PageView.get_view_count(url="/both") == 2
    assert PageView.get_view_count(url="/both/") == 1
    assert flush() == 3
    assert _daily() == [("/both", 2), ("/both/", 1)]


@pytest.mark.django_db(transaction=True)
@override_settings(PAGEVIEW_TRAILING_SLASH="keep")
def test_keep_stores_each_path_as_requested() -> None:
    visitors = distinct_visitors(3)
    wsgi_get("/both", **visitors[0])
    wsgi_get("/both/", **visitors[1])
    wsgi_get("/both/", **visitors[2])
    assert PageView.get_view_count(url="/both") == 1
    assert PageView.get_view_count(url="/both/") == 2
    assert flush() == 3
    assert _daily() == [("/both", 1), ("/both/", 2)]


@pytest.mark.django_db(transaction=True)
@override_settings(PAGEVIEW_TRAILING_SLASH="strip")
def test_strip_stores_paths_without_the_slash() -> None:
    visitors = distinct_visitors(4)
    wsgi_get("/both", **visitors[0])
    wsgi_get("/both/", **visitors[1])
    wsgi_get("/both/", **visitors[2])
    wsgi_get("/", **visitors[3])
    assert PageView.get_view_count(url="/both") == 3
    assert PageView.get_view_count(url="/both/") == 3
    assert PageView.get_view_count(url="/") == 1
    assert flush() == 4
    assert _daily() == [("/", 1), ("/both", 3)]


@pytest.mark.django_db(transaction=True)
def test_a_view_recorded_by_hand_is_normalised_too() -> None:
    record_view(url="/both")
    record_view(url="/both/")
    record_view(url="/both?page=2")
    assert PageView.get_view_count(url="/both") == 2
    assert flush() == 3
    assert _daily() == [("/both/", 2), ("/both/?page=2", 1)]
    assert PageView.get_view_count(url="/both/") == 2
    assert PageView.get_view_count(url="/both?page=2") == 1
