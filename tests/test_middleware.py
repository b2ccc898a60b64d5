"""The middleware through Django's real ASGI and WSGI handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.contrib.sessions.models import Session
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import BROWSER_UA, asgi_get, asgi_requests, wsgi_get, wsgi_request
from tests.models import Article, Document

pytestmark = pytest.mark.django_db(transaction=True)

Get = Callable[..., httpx.Response]
BOTH = pytest.mark.parametrize("get", [asgi_get, wsgi_get], ids=["asgi", "wsgi"])


def views(**filters: Any) -> int:
    return PageView.get_view_count(**filters)


@BOTH
def test_plain_page_is_counted_once(get: Get) -> None:
    response = get("/plain/")
    assert response.status_code == 200
    assert response.text == "plain"
    assert views(url="/plain/") == 1
    assert flush() == 1
    row = PageView.objects.get()
    # An unnamed route's view name is the view's dotted path, as in resolver_match.
    assert (row.url, row.view_name, row.content_type_id, row.object_id) == (
        "/plain/",
        "tests.views.plain",
        None,
        None,
    )
    assert views(url="/plain/") == 1


@BOTH
def test_named_view_is_recorded(get: Get) -> None:
    get("/")
    flush()
    assert views(view_name="plain") == 1
    assert PageView.objects.get().view_name == "plain"


def test_async_view_is_counted_under_asgi() -> None:
    response = asgi_get("/async/")
    assert response.text == "async"
    flush()
    assert views(view_name="async-page") == 1


@BOTH
@pytest.mark.parametrize(
    "path, headers",
    [
        ("/static/app.css", {}),
        ("/admin/login/", {}),
        ("/plain/", {"x-requested-with": "XMLHttpRequest"}),
        ("/status/404/", {}),
        ("/status/302/", {}),
        ("/status/201/", {}),
        ("/boom/", {}),
        ("/plain/", {"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}),
        ("/plain/", {"user-agent": "Mozilla/5.0 (compatible; bingbot/2.0)"}),
    ],
)
def test_not_page_views_add_nothing(get: Get, path: str, headers: dict[str, str]) -> None:
    get(path, **headers)
    flush()
    assert PageView.objects.count() == 0
    assert views() == 0


@BOTH
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_add_nothing(get: Get, method: str) -> None:
    if get is asgi_get:
        asgi_requests([(method, "/form/", {"user-agent": BROWSER_UA})])
    else:
        wsgi_request(method, "/form/")
    flush()
    assert views() == 0


@override_settings(PAGEVIEW_EXCLUDE_IP_ADDRESSES=["127.0.0.0/8"])
@BOTH
def test_excluded_ip_adds_nothing(get: Get) -> None:
    get("/plain/")
    assert views() == 0


@override_settings(PAGEVIEW_EXCLUDE_ADMIN=False, PAGEVIEW_EXCLUDE_AJAX=False)
@BOTH
def test_admin_and_ajax_exclusions_can_be_turned_off(get: Get) -> None:
    get("/plain/", **{"x-requested-with": "XMLHttpRequest"})
    assert views() == 1


@BOTH
def test_view_error_response_is_unchanged(get: Get) -> None:
    # The counter is the process's: another test may have moved it, so compare.
    errors_before = stats.snapshot().get(stats.SKIP_ERROR, 0)
    response = get("/boom/")
    assert response.status_code == 500
    assert stats.snapshot().get(stats.SKIP_ERROR, 0) == errors_before


# Django itself warns that it must consume a FileResponse's sync file under ASGI.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume:Warning")
@BOTH
def test_streaming_and_file_responses_are_untouched(get: Get) -> None:
    assert get("/stream/").content == b"chunk-1 chunk-2"
    response = get("/download/")
    assert response.content == b"file body"
    assert "file.txt" in response.headers["content-disposition"]
    flush()
    assert views(url="/stream/") == 1
    assert views(url="/download/") == 1


@BOTH
def test_detail_view_object_is_recorded(get: Get) -> None:
    article = Article.objects.create(title="A", slug="a")
    get(f"/articles/{article.pk}/")
    assert views(obj=article) == 1
    flush()
    row = PageView.objects.get()
    assert row.content_object == article
    assert views(obj=article) == 1


@BOTH
def test_slug_is_resolved_by_the_writer(get: Get) -> None:
    article = Article.objects.create(title="B", slug="b-slug")
    get("/by-slug/b-slug/")
    flush()
    assert PageView.objects.get().object_id == str(article.pk)
    assert views(obj=article) == 1


@BOTH
def test_custom_slug_field_and_uuid_pk(get: Get) -> None:
    document = Document.objects.create(code="X-1")
    get("/docs/X-1/")
    assert views(obj=document) == 1
    flush()
    assert PageView.objects.get().content_object == document
    assert views(obj=document) == 1


@BOTH
def test_unknown_slug_counts_for_the_url_only(get: Get) -> None:
    get("/by-slug/no-such-article/")
    flush()
    row = PageView.objects.get()
    assert (row.url, row.content_type_id, row.object_id) == (
        "/by-slug/no-such-article/",
        None,
        None,
    )


@BOTH
def test_object_set_on_the_request_by_a_function_view(get: Get) -> None:
    article = Article.objects.create(title="C", slug="c")
    get(f"/fn/{article.pk}/")
    flush()
    assert views(obj=article) == 1


@BOTH
def test_reload_within_throttle_counts_once(get: Get) -> None:
    get("/plain/")
    get("/plain/")
    get("/plain/", **{"user-agent": BROWSER_UA + " other"})
    assert views(url="/plain/") == 2


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
@BOTH
def test_throttle_zero_counts_every_reload(get: Get) -> None:
    for _ in range(3):
        get("/plain/")
    assert views(url="/plain/") == 3


@BOTH
def test_no_session_is_created(get: Get) -> None:
    response = get("/plain/")
    assert "set-cookie" not in response.headers
    assert Session.objects.count() == 0


@override_settings(PAGEVIEW_STORE_RAW=False)
@BOTH
def test_counts_without_raw_rows(get: Get) -> None:
    get("/plain/")
    flush()
    assert PageView.objects.count() == 0
    assert views(url="/plain/") == 1


@BOTH
def test_ip_is_anonymised_by_default(get: Get) -> None:
    get("/plain/")
    flush()
    assert PageView.objects.get().ip_address == "127.0.0.0"


@override_settings(PAGEVIEW_STORE_IP=True)
@BOTH
def test_ip_is_kept_when_the_site_opts_in(get: Get) -> None:
    get("/plain/")
    flush()
    assert PageView.objects.get().ip_address == "127.0.0.1"
