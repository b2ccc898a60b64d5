"""The timing of bench/reads.py, in the subprocess of one database (its own settings):
every read, interleaved, ``REPEATS`` times, stored and live, after ``RECENT_DAYS`` days of
history and again after ``ALL_DAYS``; then, after ``ALL_DAYS``, the 0.2.6-like reads
(bench/reads_original.py) over the raw rows, each up to ``ORIGINAL_REPEATS`` times but no
more once its timed calls have taken ``ORIGINAL_CAP_S`` seconds (a ``GROUP BY`` over
10,000,000 rows takes seconds). Prints nothing; ``case`` returns what the report needs, as
JSON-ready data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.reads_pending import ship_pending
from bench.reads_raw import raw_rows
from bench.reads_stored import StoredData

REPEATS = 7
RECENT_DAYS = 10
ALL_DAYS = 100
PENDING = 200_000  # distinct pages pending in Redis for the live reads
PENDING_QUICK = 2_000
MODES = ("stored", "live")
ORIGINAL_REPEATS = 3
ORIGINAL_CAP_S = 4.0

# read -> target in ms ("": none); the reads themselves are in ``reads``, in this order.
TARGETS = {
    "get_view_count(obj)": "<= 1",
    "get_view_count(url=...)": "",
    "get_view_counts_for_objects(50)": "<= 3",
    "get_popular_objects(Article, 10, days=7)": "<= 5",
    "get_popular_objects(Article, 10, days=30)": "<= 5",
    "get_popular_objects(Article, 10, days=90)": "<= 5",
    "get_popular_objects(Article, 10) all time": "<= 5",
    "get_popular_urls(10, days=7)": "<= 5",
    "get_popular_urls(10) all time": "<= 5",
    "get_popular_view_names(5, days=7)": "<= 5",
    "get_popular_view_names(5) all time": "<= 5",
    "get_daily_views(obj, 30)": "",
    "admin dashboard (page render)": "< 1000",
}

Times = dict[str, dict[str, list[float]]]  # mode -> read -> ms of each repetition


def sizes(vendor: str, quick: bool) -> tuple[int, int]:
    """(articles, raw rows)."""
    articles = 1_000 if quick else 10_000
    if vendor == "postgresql":
        return articles, 200_000 if quick else 10_000_000
    return articles, 10_000 if quick else 1_000_000


def case(vendor: str, quick: bool) -> dict[str, Any]:
    """Make the data, time the reads at ``RECENT_DAYS`` and ``ALL_DAYS`` of history."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)
    articles, raw = sizes(vendor, quick)
    started = time.perf_counter()
    data = StoredData(connection, articles)
    data.reset()
    raw_rows(data, raw)
    data.days(0, RECENT_DAYS - 1)
    made: dict[str, Any] = {"raw": raw, "setup_s": time.perf_counter() - started}
    recent = measure(articles, quick)
    started = time.perf_counter()
    data.days(RECENT_DAYS, ALL_DAYS - 1)
    made["more_s"] = time.perf_counter() - started
    made["daily"] = data.count("django_pageviews_pageviewdaily")
    made["key_daily"] = data.count("django_pageviews_pageviewkeydaily")
    made["raw_stored"] = data.count("django_pageviews_pageview")
    full = measure(articles, quick)
    original = measure_original(articles, quick)
    return {"made": made, "recent": recent, "full": full, "original": original}


def sample(articles: int) -> tuple[Any, list[Any]]:
    """The article whose count is read, and 50 random ones for the counts of many."""
    from tests.models import Article

    obj = Article.objects.get(pk=50)
    return obj, list(Article.objects.filter(pk__lte=articles).order_by("?")[:50])


def reads(articles: int) -> dict[str, Callable[[], object]]:
    """The reads of ``TARGETS``, ready to call."""
    from bench.dashboard import render_dashboard
    from django_pageviews.models import PageView
    from tests.models import Article

    obj, many = sample(articles)
    todo: dict[str, Callable[[], object]] = {
        "get_view_count(obj)": lambda: PageView.get_view_count(obj=obj),
        "get_view_count(url=...)": lambda: PageView.get_view_count(url="/articles/50/"),
        "get_view_counts_for_objects(50)": lambda: PageView.get_view_counts_for_objects(many),
        "get_popular_objects(Article, 10, days=7)": lambda: PageView.get_popular_objects(
            Article, limit=10, days=7
        ),
        "get_popular_objects(Article, 10, days=30)": lambda: PageView.get_popular_objects(
            Article, limit=10, days=30
        ),
        "get_popular_objects(Article, 10, days=90)": lambda: PageView.get_popular_objects(
            Article, limit=10, days=90
        ),
        "get_popular_objects(Article, 10) all time": lambda: PageView.get_popular_objects(
            Article, limit=10
        ),
        "get_popular_urls(10, days=7)": lambda: PageView.get_popular_urls(limit=10, days=7),
        "get_popular_urls(10) all time": lambda: PageView.get_popular_urls(limit=10),
        "get_popular_view_names(5, days=7)": lambda: PageView.get_popular_view_names(5, days=7),
        "get_popular_view_names(5) all time": lambda: PageView.get_popular_view_names(5),
        "get_daily_views(obj, 30)": lambda: PageView.get_daily_views(obj, 30),
        "admin dashboard (page render)": render_dashboard,
    }
    assert list(todo) == list(TARGETS)
    return todo


def measure(articles: int, quick: bool) -> Times:
    """Each read ``REPEATS`` times, interleaved, in ms: without Redis ("stored"), then
    with views pending in Redis ("live")."""
    from django.test import override_settings

    from bench.common import flush_redis, redis_client

    result: Times = {}
    for mode in MODES:
        live = mode == "live"
        if live:
            ship_pending(PENDING_QUICK if quick else PENDING, articles)
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=live):
            todo = reads(articles)
            times: dict[str, list[float]] = {name: [] for name in todo}
            for read in todo.values():
                read()  # warm: content types, connections, scripts
            for _ in range(REPEATS):
                for name, read in todo.items():
                    started = time.perf_counter()
                    read()
                    times[name].append((time.perf_counter() - started) * 1000)
        result[mode] = times
    flush_redis(redis_client())
    return result


def measure_original(articles: int, quick: bool) -> dict[str, list[float]]:
    """Each 0.2.6-like read once untimed (warm), then timed in ms, one read after the
    other: ``ORIGINAL_REPEATS`` times, or fewer once its calls have taken
    ``ORIGINAL_CAP_S`` seconds. ``quick``: one timed call, not warmed (the raw rows a full
    run made are kept, and each call over 10,000,000 of them takes a second or two)."""
    from bench.reads_original import reads as original_reads

    repeats = 1 if quick else ORIGINAL_REPEATS
    times: dict[str, list[float]] = {}
    for name, read in original_reads(*sample(articles)).items():
        if not quick:
            read()
        spent = times[name] = []
        while len(spent) < repeats and sum(spent) < ORIGINAL_CAP_S * 1000:
            started = time.perf_counter()
            read()
            spent.append((time.perf_counter() - started) * 1000)
    return times
