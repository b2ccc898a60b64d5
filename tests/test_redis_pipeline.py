"""The Redis path end to end inside the test process: real Redis, real database."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
from django.db.models import Sum
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch, SkippedDaily
from django_pageviews.recorder import flush
from django_pageviews.redis.buffer import Keys, claim, read_claim
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis, write_claim
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import CRAWLER_UA, asgi_requests, distinct_visitors, wsgi_get
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)


def redis_keys(url: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return sorted(str(k) for k in client.keys("*"))
    finally:
        client.close()


def stored_views() -> int:
    return PageViewDaily.objects.aggregate(total=Sum("views"))["total"] or 0


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_asgi_views_travel_through_redis_exactly(redis_url: str) -> None:
    article = Article.objects.create(title="A", slug="a")
    url = f"/async-articles/{article.pk}/"
    responses = asgi_requests([("GET", url, {})] * 300 + [("GET", "/async/", {})] * 20)
    assert {r.status_code for r in responses} == {200}
    # Shipped to Redis (the loop's batcher shipped before its loop closed), not yet stored.
    assert stored_views() == 0
    assert PageView.get_view_count(obj=article) == 300
    assert PageView.get_view_count(url=url) == 300
    assert PageView.get_view_count(view_name="async-page") == 20
    assert PageView.get_view_count() == 320
    assert flush() == 320
    assert stored_views() == 320
    assert PageView.objects.count() == 320
    assert PageView.get_view_count(obj=article) == 300
    assert PageView.get_view_count() == 320
    # Nothing pending is left behind but bookkeeping.
    leftovers = [k for k in redis_keys(redis_url) if "sent:" not in k]
    assert sorted(k.split(":", 1)[1] for k in leftovers) == ["counters", "epoch", "seq"]


def test_wsgi_views_are_shipped_by_the_thread_batcher(redis_url: str) -> None:
    article = Article.objects.create(title="B", slug="b")
    for headers in distinct_visitors(7):
        assert wsgi_get(f"/by-slug/{article.slug}/", **headers).status_code == 200
    batcher.ship_all()
    assert stored_views() == 0
    # Named by slug in Redis, found by the reader through the URLconf's slug fields.
    assert PageView.get_view_count(obj=article) == 7
    assert PageView.get_view_counts_for_objects([article]) == {article.pk: 7}
    drain_redis(time_budget=None)
    assert PageView.get_view_count(obj=article) == 7
    assert PageView.objects.filter(object_id=str(article.pk)).count() == 7


@override_settings(PAGEVIEW_STORE_RAW=False, PAGEVIEW_BATCH_SIZE=3)
def test_counts_only_and_many_small_batches(redis_url: str) -> None:
    asgi_requests([("GET", f"/status/200/?{i}", h) for i, h in enumerate(distinct_visitors(10))])
    asgi_requests([("GET", f"/plain/{i}", {}) for i in range(0)])
    result = drain_redis(time_budget=None)
    # One target: one count field, and ten visitor fields (one per visitor and day): 11
    # fields, 3 per claim.
    assert (result.views, result.batches) == (10, 4)
    assert PageView.objects.count() == 0
    assert stored_views() == 10


def test_a_batch_committed_but_not_acknowledged_is_counted_once(redis_url: str) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(5)])
    client = get_client()
    batch_id = claim(client, 100)
    assert batch_id is not None
    batch = read_claim(client, batch_id)
    # Write without acknowledging: what a flusher killed right after its commit leaves.
    from django_pageviews.storage import write_batch
    from django_pageviews.wire import parse_count_field

    totals = {parse_count_field(f): n for f, n in batch.counts.items()}
    assert write_batch(batch_id, [], totals) == 5
    assert stored_views() == 5
    assert PageView.get_view_count(url="/plain/") == 5  # not 10
    result = cleanup(stale_after=0)
    assert (result.acknowledged, result.replayed) == (1, 0)
    assert PageView.get_view_count(url="/plain/") == 5
    assert stored_views() == 5


def test_a_claimed_batch_never_written_is_replayed_by_cleanup(redis_url: str) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(4)])
    client = get_client()
    assert claim(client, 100) is not None  # the flusher dies here
    assert PageView.get_view_count(url="/plain/") == 4
    result = cleanup(stale_after=0)
    assert (result.acknowledged, result.replayed) == (0, 1)
    assert stored_views() == 4
    assert PageView.get_view_count(url="/plain/") == 4
    assert cleanup(stale_after=0).replayed == 0


def test_writing_a_claim_twice_counts_it_once(redis_url: str) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
    client = get_client()
    batch_id = claim(client, 100)
    assert batch_id is not None
    batch = read_claim(client, batch_id)
    assert write_claim(client, batch) == 3
    assert write_claim(client, batch) == 0  # replay: skipped, and acknowledged once
    assert stored_views() == 3
    assert ProcessedBatch.objects.count() == 1
    assert PageView.get_view_count() == 3


def test_a_retried_shipment_lands_once(redis_url: str) -> None:
    from django_pageviews.redis.scripts import ship
    from django_pageviews.redis.shipping import build_shipment
    from tests.test_storage import PAGE, event

    shipment = build_shipment([event(PAGE) for _ in range(6)], Counter())
    keys, args = shipment.script_args()
    client = get_client()
    ship(keys=keys, args=args, client=client)
    ship(keys=keys, args=args, client=client)  # a retry after an unknown outcome
    assert PageView.get_view_count(url=PAGE.url) == 6
    assert drain_redis(time_budget=None).views == 6


def test_poison_records_are_skipped_and_counted(redis_url: str) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(2)])
    client = get_client()
    keys = Keys.current()
    client.rpush(keys.events, "not json", '["x"]')
    client.hincrby(keys.pending, "garbage-field", 3)
    before = stats.snapshot().get(stats.SKIP_INVALID, 0)
    result = drain_redis(time_budget=None)
    assert stats.snapshot().get(stats.SKIP_INVALID, 0) - before == 5  # 2 records + 3 views
    assert list(SkippedDaily.objects.values_list("reason", "requests")) == [(stats.SKIP_INVALID, 5)]
    assert result.views == 2
    assert PageView.objects.count() == 2
    assert stored_views() == 2


def test_status_command_reports_the_buffer(redis_url: str) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    asgi_requests([("GET", "/plain/", h) for h in [*distinct_visitors(3), {"user-agent": ""}]])
    out = StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["redis"]["pending_views"] == 3
    assert report["not_counted_today"] == {}  # the bot's count is still on its way
    assert report["redis"]["claimed_batches"] == 0
    assert report["redis"]["oldest_pending_age_seconds"] >= 0
    out = StringIO()
    call_command("pageviews_flush", stdout=out)
    assert "Drained 3 views from Redis in 1 batches" in out.getvalue()
    out = StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["redis"]["pending_views"] == 0
    assert report["redis"]["counters"]["last_flush_views"] == 3
    assert report["not_counted_today"] == {"bot": 1}


@override_settings(PAGEVIEW_SHIP_INTERVAL=30)
def test_views_not_yet_shipped_by_this_process_are_live(redis_url: str) -> None:
    for headers in distinct_visitors(3):
        wsgi_get("/plain/", **headers)
    assert PageView.get_view_count(url="/plain/") == 3  # still in the thread batcher
    assert PageView.get_popular_urls(limit=1) == [("/plain/", 3)]
    batcher.ship_all()
    assert PageView.get_view_count(url="/plain/") == 3


def test_skip_counts_ride_through_redis_with_the_views(redis_url: str) -> None:
    wsgi_get("/plain/", **{"user-agent": CRAWLER_UA})
    wsgi_get("/plain/")
    batcher.ship_all()
    assert SkippedDaily.objects.count() == 0  # in Redis, with the view
    assert drain_redis(time_budget=None).views == 1
    assert list(SkippedDaily.objects.values_list("reason", "requests")) == [("bot", 1)]


@override_settings(PAGEVIEW_BUFFER_TIMEOUT=0.2)
def test_skip_counts_of_an_idle_process_are_saved_by_its_writer(redis_url: str) -> None:
    """A process that sees only crawlers has no view for its skip counts to ride with:
    the in-process writer wakes for them and saves them after PAGEVIEW_BUFFER_TIMEOUT."""
    wsgi_get("/plain/", **{"user-agent": CRAWLER_UA})
    wsgi_get("/plain/", **{"user-agent": CRAWLER_UA})
    deadline = time.monotonic() + 30
    while not SkippedDaily.objects.exists():
        assert time.monotonic() < deadline, "the writer did not save the skip counts"
        time.sleep(0.05)
    assert list(SkippedDaily.objects.values_list("reason", "requests")) == [("bot", 2)]


def test_a_misspelt_key_is_an_error_not_a_new_key() -> None:
    keys = Keys.current()
    assert keys.pending == keys.prefix + "pending"
    with pytest.raises(AttributeError):
        keys.pendng  # type: ignore[attr-defined]  # noqa: B018
