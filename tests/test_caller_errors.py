"""Counting by hand never breaks the caller's request: Redis stopped or full, or a shared
cache down, through the real WSGI and ASGI handlers. The view still counts, the error is
counted, and recording a view does not wait on Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path

from django_pageviews import stats
from django_pageviews.manual import aincrement_view_count, increment_view_count, record_view
from django_pageviews.middleware import MIDDLEWARE_PATH
from django_pageviews.models import PageViewDaily
from django_pageviews.recorder import flush
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import asgi_get, wsgi_get
from tests.models import Article
from tests.processes import wait_for
from tests.redis_server import PrivateRedis

pytestmark = [pytest.mark.django_db(transaction=True)]

WITHOUT_MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]


def count_sync(request: HttpRequest, slug: str) -> HttpResponse:
    counted = increment_view_count(Article.objects.get(slug=slug), request=request)
    return HttpResponse("counted" if counted else "throttled")


async def count_async(request: HttpRequest, slug: str) -> HttpResponse:
    article = await Article.objects.aget(slug=slug)
    counted = await aincrement_view_count(article, request=request)
    return HttpResponse("counted" if counted else "throttled")


urlpatterns = [
    path("sync/<slug:slug>/", count_sync),
    path("async/<slug:slug>/", count_async),
]


@pytest.fixture
def views(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    Article.objects.create(title="A", slug="a")
    Article.objects.create(title="B", slug="b")
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=WITHOUT_MIDDLEWARE):
        yield private_redis


def counter(name: str) -> int:
    return stats.snapshot().get(name, 0)


def stored(slug: str) -> int:
    article = Article.objects.get(slug=slug)
    rows = PageViewDaily.objects.filter(object_id=str(article.pk))
    return int(rows.aggregate(n=Sum("views"))["n"] or 0)


def request_both() -> None:
    """One sync view under WSGI and one async view under ASGI, each counting by hand."""
    response = wsgi_get("/sync/a/")
    assert (response.status_code, response.text) == (200, "counted")
    response = asgi_get("/async/b/")
    assert (response.status_code, response.text) == (200, "counted")


def test_redis_stopped(views: PrivateRedis) -> None:
    errors = counter(stats.THROTTLE_ERROR)
    views.stop()
    request_both()
    assert counter(stats.THROTTLE_ERROR) - errors == 2
    views.start()
    wait_for(lambda: batcher.breaker.allows(), "the batcher's breaker to close")
    flush()
    assert (stored("a"), stored("b")) == (1, 1)


def test_redis_full(views: PrivateRedis) -> None:
    admin = redis.Redis.from_url(views.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)  # every write is refused with OOM
    errors = counter(stats.THROTTLE_ERROR)
    request_both()
    assert counter(stats.THROTTLE_ERROR) - errors == 2
    admin.config_set("maxmemory", 0)
    admin.close()
    wait_for(
        lambda: batcher.retry is None and not batcher.queue, "the batcher to ship the two views"
    )
    flush()
    assert (stored("a"), stored("b")) == (1, 1)
    # The shared throttle works again: a reload is not counted.
    assert wsgi_get("/sync/a/").text == "throttled"


def test_shared_cache_down(views: PrivateRedis) -> None:
    cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    cache["default"]["LOCATION"] = views.url
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=False, CACHES=cache):
        views.stop()
        errors = counter(stats.THROTTLE_ERROR)
        request_both()
        assert counter(stats.THROTTLE_ERROR) - errors == 2
        flush()
    assert (stored("a"), stored("b")) == (1, 1)


@override_settings(PAGEVIEW_SHIP_INTERVAL=30)
def test_record_view_does_not_ship_on_the_callers_time(private_redis: PrivateRedis) -> None:
    record_view("/by-hand/")
    # Queued for the shipper (a micro-batch), not sent to Redis before returning.
    assert len(batcher.queue) == 1 and batcher.retry is None
    client = redis.Redis.from_url(private_redis.url)
    assert client.dbsize() == 0
    client.close()
    assert flush() == 1


def test_the_public_names_are_the_package_s_own() -> None:
    """``django_pageviews.record_view`` / ``flush``: the same functions as the old paths
    (kept working), usable without knowing the modules' names."""
    import django_pageviews
    from django_pageviews import flush, manual, record_view, recorder
    from django_pageviews.models import PageView

    assert record_view is manual.record_view and flush is recorder.flush
    assert django_pageviews.record_view("/public-name/") is not None
    assert django_pageviews.flush() == 1
    assert PageView.objects.get().url == "/public-name/"
    with pytest.raises(AttributeError):
        django_pageviews.record  # noqa: B018
