"""What must hold across processes: one throttle, one daily salt, and one set of counts of
the requests that were not views."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import time_machine
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from django_pageviews import stats
from django_pageviews.events import URL_MAX_LENGTH, local_day
from django_pageviews.models import PageView, PageViewDaily, SkippedDaily, VisitorSalt
from django_pageviews.recorder import flush
from django_pageviews.throttle import throttle
from tests.conftest import BROWSER_UA, CRAWLER_UA, asgi_get, asgi_requests, wsgi_get
from tests.models import Article
from tests.processes import free_port, running, subprocess_env, uvicorn, wait_until_serving

pytestmark = pytest.mark.django_db(transaction=True)


def skipped() -> dict[str, int]:
    rows = SkippedDaily.objects.values_list("reason").annotate(n=Sum("requests"))
    return dict(rows)


def test_a_reload_served_by_another_uvicorn_process_counts_once(
    redis_url: str, tmp_path: Path
) -> None:
    """Two uvicorn processes on one Redis: the throttle and the visitor hash hold across
    them, and each process's skip counts reach the database with its views."""
    env = subprocess_env(redis_url)
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    with (
        running(uvicorn("tests.asgi:application", ports[0]), env, tmp_path / "a.log") as a,
        running(uvicorn("tests.asgi:application", ports[1]), env, tmp_path / "b.log") as b,
    ):
        wait_until_serving(bases[0] + "/plain/", a)
        wait_until_serving(bases[1] + "/plain/", b)
        for visitor in ("one", "two"):
            headers = {"user-agent": f"{BROWSER_UA} {visitor}"}
            for base in bases:  # the same page from both processes: one view
                assert httpx.get(base + "/async/", headers=headers).status_code == 200
                time.sleep(0.5)  # the first process has shipped before the second sees it
            # another page in the other process: a view, with the same visitor hash
            assert httpx.get(bases[1] + "/plain/", headers=headers).status_code == 200
        assert (
            httpx.get(bases[0] + "/async/", headers={"user-agent": CRAWLER_UA}).status_code == 200
        )
        time.sleep(0.5)
    assert flush() == 4
    assert PageView.get_view_count(url="/async/") == 2
    assert PageView.get_view_count(url="/plain/") == 2
    hashes: dict[str, set[str]] = {url: set() for url in ("/async/", "/plain/")}
    for url, vhash in PageView.objects.values_list("url", "visitor_hash"):
        hashes[url].add(vhash)
    assert len(hashes["/async/"]) == 2
    assert hashes["/async/"] == hashes["/plain/"]  # both processes hashed alike
    # bots: the two readiness probes (wait_until_serving) and Googlebot
    assert skipped() == {stats.SKIP_THROTTLED: 2, stats.SKIP_BOT: 3}


@pytest.mark.parametrize("get", [wsgi_get, asgi_get], ids=["wsgi", "asgi"])
def test_in_process_mode_throttles_across_processes_through_a_shared_cache(
    redis_base_url: str, settings: Any, get: Callable[..., httpx.Response]
) -> None:
    # Only the settings fixture here: it restores what it captured when first changed, so
    # mixed with override_settings it would leave the override's values behind.
    settings.PAGEVIEW_THROTTLE_SECONDS = 60
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_base_url,
            "KEY_PREFIX": f"throttle-test-{time.time()}",
        }
    }
    assert get("/plain/").status_code == 200
    throttle.clear()  # as another process would be: nothing of this visitor in memory
    assert get("/plain/").status_code == 200
    assert get("/plain/", **{"user-agent": f"{BROWSER_UA} other"}).status_code == 200
    assert flush() == 2
    assert skipped() == {stats.SKIP_THROTTLED: 1}


@override_settings(PAGEVIEW_THROTTLE_SECONDS=60)
def test_a_per_process_cache_leaves_the_throttle_per_process() -> None:
    assert wsgi_get("/plain/").status_code == 200
    throttle.clear()
    assert wsgi_get("/plain/").status_code == 200
    assert flush() == 2  # documented: the local-memory cache is not shared


def test_an_unreachable_cache_never_costs_a_view(settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    before = stats.snapshot().get(stats.THROTTLE_ERROR, 0)
    assert wsgi_get("/plain/").status_code == 200
    assert flush() == 1
    assert stats.snapshot().get(stats.THROTTLE_ERROR, 0) - before == 1


@pytest.mark.parametrize("pipeline", ["in-process", "redis"], indirect=True)
@override_settings(PAGEVIEW_RESPECT_DNT=True, PAGEVIEW_THROTTLE_SECONDS=60)
def test_every_request_not_counted_is_counted_by_reason(pipeline: str) -> None:
    responses = asgi_requests(
        [
            ("GET", "/plain/", {}),
            ("GET", "/plain/", {"user-agent": CRAWLER_UA}),
            ("GET", "/plain/", {"user-agent": ""}),
            ("GET", "/plain/", {"dnt": "1", "user-agent": f"{BROWSER_UA} dnt"}),
            ("GET", "/plain/", {"sec-gpc": "1", "user-agent": f"{BROWSER_UA} gpc"}),
            ("GET", "/plain/", {"sec-purpose": "prefetch", "user-agent": f"{BROWSER_UA} p"}),
            ("GET", "/static/app.css", {}),
            ("POST", "/plain/", {}),  # not a page view at all: not counted as skipped
        ]
    )
    assert [r.status_code for r in responses][:6] == [200] * 6
    asgi_requests([("GET", "/plain/", {})])  # a reload
    assert flush() == 1
    assert skipped() == {
        stats.SKIP_BOT: 2,
        stats.SKIP_DNT: 1,
        stats.SKIP_GPC: 1,
        stats.SKIP_PREFETCH: 1,
        stats.SKIP_EXCLUDED: 1,
        stats.SKIP_THROTTLED: 1,
    }
    assert flush() == 0
    assert sum(skipped().values()) == 7  # written once


def test_visitor_hash_is_stable_within_a_day_and_changes_the_next(settings: Any) -> None:
    settings.PAGEVIEW_THROTTLE_SECONDS = 0
    noon = timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time()))
    noon += timedelta(hours=12)
    for when in (noon, noon + timedelta(hours=3), noon + timedelta(days=1)):
        with time_machine.travel(when, tick=False):
            assert wsgi_get("/plain/").status_code == 200
            assert flush() == 1
    first, later, next_day = PageView.objects.order_by("timestamp").values_list(
        "visitor_hash", flat=True
    )
    assert first == later
    assert next_day != first
    days = set(VisitorSalt.objects.values_list("day", flat=True))
    assert days == {noon.date(), noon.date() + timedelta(days=1)}


@pytest.mark.parametrize("pipeline", ["in-process", "redis"], indirect=True)
@override_settings(USE_TZ=False, TIME_ZONE="Pacific/Kiritimati")
def test_projects_without_time_zone_support_count_on_their_local_day(pipeline: str) -> None:
    asgi_requests([("GET", "/plain/", {}), ("GET", "/plain/", {"user-agent": CRAWLER_UA})])
    assert flush() == 1
    day = datetime.now().date()  # naive local time: TIME_ZONE's calendar
    assert list(PageViewDaily.objects.values_list("day", "views")) == [(day, 1)]
    assert list(SkippedDaily.objects.values_list("day", "reason")) == [(day, stats.SKIP_BOT)]
    assert PageView.get_popular_urls(days=1) == [("/plain/", 1)]
    assert VisitorSalt.objects.filter(day=day).exists()


def test_increment_view_count_keeps_no_address_or_session_key_in_redis(redis_url: str) -> None:
    article = Article.objects.create(title="A", slug="a")
    assert PageView.increment_view_count(article, ip_address="203.0.113.77", user_agent="UA")
    assert PageView.increment_view_count(article, session_key="secret-session-key")
    assert not PageView.increment_view_count(article, session_key="secret-session-key")
    keys = " ".join(str(k) for k in redis.Redis.from_url(redis_url).keys("*"))
    assert "throttle:" in keys
    assert "203.0.113" not in keys
    assert "secret-session-key" not in keys


def test_days_follow_the_site_zone_whatever_a_request_activated() -> None:
    ts = 1767223800.0  # 2025-12-31 23:30 UTC: already 2026-01-01 in Tokyo
    with timezone.override("Asia/Tokyo"):
        assert local_day(ts) == date(2025, 12, 31)  # TIME_ZONE is UTC
    assert local_day(ts) == date(2025, 12, 31)


def test_a_long_path_of_escaped_characters_fits_the_url_column() -> None:
    assert asgi_get("/long/" + "%00" * 400).status_code == 200
    assert flush() == 1
    (url,) = PageView.objects.values_list("url", flat=True)
    assert len(url) <= URL_MAX_LENGTH
    assert url == "/long/" + "%00" * ((URL_MAX_LENGTH - 6) // 3)  # no escape cut in two


def test_views_buffered_at_interpreter_exit_are_written_with_their_hash(
    redis_url: str, tmp_path: Path
) -> None:
    """At exit no new thread can start (the salt loader's included): the atexit flush
    still hashes and writes, in both pipelines."""
    script = (
        "import django; django.setup()\n"
        "from django_pageviews.manual import record_view\n"
        "record_view('/exit/', ip_address='203.0.113.9', user_agent='UA')\n"
    )
    for async_mode in ("false", "true"):
        env = subprocess_env(redis_url, PAGEVIEW_ASYNC_PROCESSING=async_mode)
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
    assert flush() == 1  # the async process's view, from Redis
    rows = PageView.objects.filter(url="/exit/").values_list("visitor_hash", flat=True)
    assert len(rows) == 2
    assert all(len(h) == 32 for h in rows)
