"""Live reads by day and the per-day lists through a restore, a poison record and a
replay (issue #10, items 2, 3, 5c and 8 together): after every step each live read equals
the database plus what is truly pending, and once all is drained Redis holds no list,
total or claim. Odd but legal targets: URLs with the list separator, colons, unicode,
700 characters; an empty view name; objects named by a slug. Real private Redis (7.x and
6.2), restored for real from an RDB snapshot; real database with a poison trigger."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from django.core.management import call_command
from django.db.models import Sum

from django_pageviews.events import PageViewEvent, Target, current_day
from django_pageviews.models import PageView, PageViewDaily, SkippedDaily
from django_pageviews.redis.buffer import Keys
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis
from django_pageviews.redis.restore import replay_restored, restored_status
from django_pageviews.redis.sync_batcher import batcher
from django_pageviews.reports import (
    get_daily_views,
    get_popular_objects,
    get_popular_urls,
    get_popular_view_names,
    get_views_by_period,
)
from tests.db_faults import allow_all, refuse_url
from tests.models import Article
from tests.redis_server import SERVERS, PrivateRedis, async_redis

pytestmark = pytest.mark.django_db(transaction=True)

ODD = ["/a|b/", "/c:d/", "/é/ü/", "/" + "l" * 699, "/plain/"]
POISON = "/poison|x/"


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[PrivateRedis]:
    with async_redis(
        request.param,
        PAGEVIEW_STORE_RAW=True,
        PAGEVIEW_BATCH_SIZE=3,
    ) as private:
        yield private
        batcher.discard()


def ship(targets: list[Target]) -> None:
    for t in targets:
        batcher.submit(PageViewEvent(uuid.uuid4().hex, time.time(), t, None, "", ""))
    batcher.ship_all()
    assert batcher.retry is None and not batcher.queue


def url_views(url: str, n: int, view: str = "") -> list[Target]:
    return [Target(url, view, "", "", "")] * n


def article_views(article: Article, n: int) -> list[Target]:
    return [Target(f"/art/{article.slug}/", "art", "tests.article", "slug", article.slug)] * n


def stored_by_url() -> Counter[str]:
    rows = PageViewDaily.objects.values_list("url").annotate(n=Sum("views"))
    return Counter({url: n for url, n in rows if n})


VIEW_NAMES = {"/art/": "art", ODD[1]: "v:1"}


def ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def check_reads(truth: Counter[str], articles: dict[str, Article]) -> None:
    """Every live read against ``truth`` (URL -> views that should count now)."""
    expected = ranked(truth)
    assert get_popular_urls(limit=50) == expected
    assert get_popular_urls(limit=2, days=1) == expected[:2]
    assert PageView.get_view_count() == sum(truth.values())
    for url, n in truth.items():
        assert PageView.get_view_count(url=url) == n, url
    names: Counter[str] = Counter()
    for url, n in truth.items():
        for prefix, name in VIEW_NAMES.items():
            if url.startswith(prefix):
                names[name] += n
    assert get_popular_view_names(limit=5) == ranked(+names)
    objects = [(a, truth[f"/art/{slug}/"]) for slug, a in articles.items()]
    objects = [(a, n) for a, n in objects if n]
    objects.sort(key=lambda an: (-an[1], str(an[0].pk)))
    assert get_popular_objects(Article, limit=5) == objects
    for slug, a in articles.items():
        n = truth[f"/art/{slug}/"]
        assert get_views_by_period(a, days=1) == n
        assert get_daily_views(a, days=2)[current_day()] == n


LEFT_BEHIND = ("top", "dims", "pending", "events", "claims", "chunk", "evchunk", "restored")


def assert_nothing_left(client: redis.Redis) -> None:
    """No list, total, pending view, claim or restored group left in Redis."""
    prefix = Keys.current().prefix
    names = [str(k) for k in client.keys(prefix + "*")]
    left = [k for k in names if k[len(prefix) :].split(":")[0] in LEFT_BEHIND]
    assert left == []


def test_reads_and_lists_through_a_restore_a_poison_record_and_replays(
    server: PrivateRedis,
) -> None:
    client = get_client()
    raw = redis.Redis.from_url(server.url, decode_responses=True)
    articles = {s: Article.objects.create(title=s, slug=s) for s in ("s|1", "s:2", "ß3")}
    truth: Counter[str] = Counter()
    first = [*url_views(ODD[0], 4), *url_views(ODD[1], 2, "v:1"), *url_views(ODD[2], 3)]
    first += [*article_views(articles["s|1"], 5), *url_views(POISON, 2)]
    ship(first)
    truth.update(t.url for t in first)
    check_reads(truth, articles)
    refuse_url(PageViewDaily, POISON)
    try:
        assert drain_redis(time_budget=None).views == len(first) - 2
        truth[POISON] -= 2  # counted as invalid, set aside
        check_reads(+truth, articles)
    finally:
        allow_all(PageViewDaily)
    second = [*url_views(ODD[3], 2), *article_views(articles["s:2"], 6)]
    ship(second)
    truth.update(t.url for t in second)
    check_reads(+truth, articles)
    raw.save()  # the snapshot: `second` pending, the poison record set aside
    assert drain_redis(time_budget=None).views == len(second)
    check_reads(+truth, articles)
    call_command("pageviews_flush", "--retry-aside")
    truth[POISON] += 2
    check_reads(+truth, articles)

    server.restart()  # back from the snapshot: `second` pending again, written already
    third = [*url_views(ODD[4], 3), *article_views(articles["ß3"], 1)]
    ship(third)  # shipped before the next drain looks: parked with `second`
    assert drain_redis(time_budget=None).views == 0
    [group] = restored_status(client)
    assert group["views"] == len(second) + len(third)
    check_reads(+truth, articles)  # parked: neither `second` again nor `third` yet
    batch_ids = replay_restored()  # in claims of BATCH_SIZE
    assert len(batch_ids) > 1
    truth.update(t.url for t in third)
    check_reads(+truth, articles)  # handed back: only what the database lacks
    assert cleanup().replayed == len(batch_ids)
    check_reads(+truth, articles)
    # The restored Redis has the poison record set aside again: written already, once.
    call_command("pageviews_flush", "--retry-aside")
    check_reads(+truth, articles)
    assert stored_by_url() == +truth
    assert PageView.objects.count() == sum(truth.values())
    assert SkippedDaily.objects.aggregate(n=Sum("requests"))["n"] in (0, None)
    assert_nothing_left(raw)
