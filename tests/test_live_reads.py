"""Live reads stay exact while a backlog drains, and bounded however much is pending.

The views are all shipped before the drain starts and none arrives during it: the true
total is the same at every instant, so every read made during the drain must return it
exactly. Drains run for real in threads of their own (own database connections), with
small batches so that claims and commits keep landing in the middle of reads.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import override_settings

from django_pageviews import queries
from django_pageviews.events import PageViewEvent, Target, current_day
from django_pageviews.live import READ_INEXACT
from django_pageviews.models import PageView
from django_pageviews.redis import drain
from django_pageviews.redis.buffer import CLAIM_HELD, HOLD_SUFFIX, Keys, Shipment, claim
from django_pageviews.redis.client import get_client
from django_pageviews.redis.scripts import claim as claim_script
from django_pageviews.redis.scripts import ship
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.redis.snapshots import hold_claims
from django_pageviews.reports import get_popular_urls, get_popular_view_names
from django_pageviews.stats import snapshot as stats_snapshot
from django_pageviews.storage import write_batch
from django_pageviews.wire import count_field
from tests.models import Article
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = 240
VIEWS_PER_PAGE = 3  # page i gets 3 views, plus i % 7 more: the popular list has an order
DRAINERS = 2
BATCH = 4  # count fields per claim: 60+ batches, a claim every few milliseconds


def page_views(i: int) -> int:
    return VIEWS_PER_PAGE + i % 7


def event(i: int, now: float) -> PageViewEvent:
    return PageViewEvent(
        uuid.uuid4().hex, now, Target(f"/p/{i}/", "page", "", "", ""), "", "", uuid.uuid4().hex
    )


def ship_backlog(pages: int = PAGES) -> int:
    """Ship every page's views to Redis (one shipment per 40 pages); the total shipped."""
    client = get_client()
    now = time.time()
    total = 0
    for first in range(0, pages, 40):
        events = [
            event(i, now)
            for i in range(first, min(first + 40, pages))
            for _ in range(page_views(i))
        ]
        keys, args = build_shipment(events, Counter()).script_args()
        ship(keys=keys, args=args, client=client)
        total += len(events)
    return total


def expected_top(limit: int, pages: int = PAGES) -> list[tuple[str, int]]:
    totals = {f"/p/{i}/": page_views(i) for i in range(pages)}
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def drain_until_empty(errors: list[BaseException]) -> None:
    try:
        while drain.drain_redis(None).batches:
            pass
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        connections.close_all()


def reads_during_drain(read: Callable[[], None]) -> int:
    """Run ``read`` again and again while DRAINERS threads drain the backlog; the number
    of reads made while the drain ran."""
    errors: list[BaseException] = []
    threads = [threading.Thread(target=drain_until_empty, args=(errors,)) for _ in range(DRAINERS)]
    for thread in threads:
        thread.start()
    reads = 0
    try:
        while any(t.is_alive() for t in threads):
            read()
            reads += 1
    finally:
        for thread in threads:
            thread.join()
    assert errors == []
    read()  # and once the backlog is drained
    return reads


@pytest.fixture
def small_batches(redis_url: str) -> Iterator[None]:
    with override_settings(PAGEVIEW_BATCH_SIZE=BATCH, PAGEVIEW_STORE_RAW=False):
        yield


def check_every_read(total: int, inside_transaction: bool, pages: int = PAGES) -> None:
    top = expected_top(5, pages)
    seen: list[tuple[int, int, list[tuple[str, int]], list[tuple[str, int]]]] = []

    def read() -> None:
        def once() -> None:
            seen.append(
                (
                    PageView.get_view_count(view_name="page"),
                    PageView.get_view_count(),
                    get_popular_view_names(limit=1),
                    get_popular_urls(limit=5),
                )
            )

        if inside_transaction:  # as under ATOMIC_REQUESTS
            with transaction.atomic():
                once()
        else:
            once()

    inexact_before = stats_snapshot().get(READ_INEXACT, 0)
    reads = reads_during_drain(read)
    assert reads > 0
    wrong = [s for s in seen if s != (total, total, [("page", total)], top)]
    assert wrong == [], f"{len(wrong)} of {len(seen)} reads were off"
    assert stats_snapshot().get(READ_INEXACT, 0) == inexact_before
    client = get_client()
    assert client.hlen(Keys.current().pending) == 0
    assert client.keys(Keys.current().top + "*") == []  # the day lists leave nothing behind


@pytest.mark.usefixtures("small_batches")
def test_reads_are_exact_while_a_backlog_drains() -> None:
    total = ship_backlog()
    check_every_read(total, inside_transaction=False)


@pytest.mark.usefixtures("small_batches")
def test_reads_inside_a_transaction_are_exact_while_a_backlog_drains() -> None:
    total = ship_backlog()
    check_every_read(total, inside_transaction=True)


@pytest.mark.usefixtures("small_batches")
def test_a_hold_keeps_new_claims_off_until_released() -> None:
    ship_backlog(pages=8)
    client = get_client()
    keys = Keys.current()
    fields = client.hlen(keys.pending)  # the 8 pages' and their visitors' (counts only)
    assert fields > 8
    with hold_claims(client):
        assert client.exists(keys.seq + HOLD_SUFFIX) == 1
        refused = claim_script(
            keys=[
                keys.pending,
                keys.events,
                keys.claims,
                keys.chunk("x"),
                keys.evchunk("x"),
                keys.seq,
                keys.oldest,
            ],
            args=[BATCH, time.time(), "x"],
            client=client,
        )
        assert refused == CLAIM_HELD
        assert client.hlen(keys.pending) == fields
        assert client.zcard(keys.claims) == 0
        # A drain asking meanwhile is refused, and asks again (the script runs again).
        calls = script_calls(client)
        claimed: list[str | None] = []
        waiting = threading.Thread(target=lambda: claimed.append(claim(get_client(), BATCH)))
        waiting.start()
        wait_for(lambda: script_calls(client) >= calls + 3, "a held claim asking again")
        assert client.hlen(keys.pending) == fields
        assert waiting.is_alive()
    waiting.join()
    assert claimed[0] is not None
    assert client.exists(keys.seq + HOLD_SUFFIX) == 0
    assert client.hlen(keys.pending) == fields - BATCH


@pytest.mark.usefixtures("small_batches")
def test_a_claim_committed_under_a_count_is_seen_by_its_own_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decision 46: the statement of a one-key count asks the database for batches claimed
    after the Redis snapshot. The whole backlog is drained (claimed, committed and
    acknowledged) between the snapshot and that statement: the statement finds the
    later claims and the read starts again, exact."""
    total = ship_backlog(pages=8)
    real = queries._total
    answers: list[bool] = []

    def drained_first(hashed: str, fence: Any = None) -> Any:
        if fence is None:
            return real(hashed)
        if not answers:
            errors: list[BaseException] = []
            drain_until_empty(errors)
            assert errors == []
        found = real(hashed, fence)
        answers.append(found[1])
        return found

    monkeypatch.setattr(queries, "_total", drained_first)
    inexact = stats_snapshot().get(READ_INEXACT, 0)
    assert PageView.get_view_count(view_name="page") == total
    assert answers == [True, False]  # later claims found; then none, on the next attempt
    assert stats_snapshot().get(READ_INEXACT, 0) == inexact


@pytest.mark.usefixtures("small_batches")
def test_a_one_key_count_with_nothing_claimed_meanwhile_asks_redis_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No open claim, none made: the snapshot script is the only command this process
    sends (the claim sequence is not read again, decision 46); with an open claim, the
    sequence is read after the database."""
    from redis.connection import AbstractConnection

    total = ship_backlog(pages=8)
    client = get_client()
    PageView.get_view_count(view_name="page")  # the script loaded, the connection made
    sent: list[Any] = []
    send: Callable[..., Any] = AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(command)
        return send(self, command, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    assert PageView.get_view_count(view_name="page") == total
    assert len(sent) == 1  # SNAPSHOT
    assert claim(client, BATCH) is not None  # an open claim, not written
    sent.clear()
    assert PageView.get_view_count(view_name="page") == total
    assert len(sent) == 2  # SNAPSHOT, then GET of the claim sequence


def script_calls(client: Any) -> int:
    """EVALSHA and EVAL calls of the server that holds the buffer: on a cluster, the
    primary of its slot (INFO would otherwise go to a default node, the buffer's only by
    chance: a reshard or a failover moves it)."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(Keys.current().pending)  # type: ignore[no-untyped-call]
        stats = client.info("commandstats", target_nodes=node)
    else:
        stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


# Bounded report reads: 200,000 distinct pages pending.

BIG = 200_000


def ship_totals(totals: dict[tuple[date, Target], int], shard: int | None = None) -> None:
    """Ship pre-aggregated counts as producers do (fields, dimensions, day lists); to
    ``shard`` if given (made with PAGEVIEW_BUFFER_SHARDS)."""
    client = get_client()
    items = list(totals.items())
    for start in range(0, len(items), 1000):
        part = items[start : start + 1000]
        counts = Counter({count_field(day, target): n for (day, target), n in part})
        shipment = Shipment(counts, [], [])  # SHIP derives the dimensions and day lists
        if shard is not None:
            shipment.shard = shard
        keys, args = shipment.script_args()
        ship(keys=keys, args=args, client=client)


def page(i: int) -> Target:
    return Target(f"/big/{i}/", "big", "", "", "")


def ranked(totals: Counter[str], limit: int) -> list[tuple[str, int]]:
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


@pytest.mark.usefixtures("redis_url")
@override_settings(PAGEVIEW_REDIS_SOCKET_TIMEOUT=10)  # filling Redis is slow on a busy machine
def test_popular_lists_are_exact_with_200k_distinct_pages_pending() -> None:
    today = current_day()
    yesterday = today - timedelta(days=1)
    # Pending: every page 1-5 views today (thousands of ties at each count), every
    # 1,000th page 4 more yesterday; stored: a few pages, some of them pending too.
    pending = {(today, page(i)): 1 + (i * 7919) % 5 for i in range(BIG)}
    pending.update({(yesterday, page(i)): 4 for i in range(0, BIG, 1000)})
    stored = {(today, page(i)): 1 + i % 4 for i in range(0, 3000, 7)}
    stored[(yesterday, Target("/stored-only/", "stored", "", "", ""))] = 9
    stored[(today, Target("/stored-today/", "stored", "", "", ""))] = 6
    write_batch(uuid.uuid4().hex, [], stored)
    ship_totals(pending)

    def totals(first: date | None) -> Counter[str]:
        found: Counter[str] = Counter()
        for source in (pending, stored):
            for (day, target), n in source.items():
                if first is None or day >= first:
                    found[target.url] += n
        return found

    all_days, one_day = totals(None), totals(today)
    # Bounded: the read fetches the lists' tops, not the 200,000 pending pages (about
    # 12 MB on the wire when they were all read).
    client = get_client()
    sent_before = client.info("stats")["total_net_output_bytes"]
    assert get_popular_urls(limit=30) == ranked(all_days, 30)
    assert client.info("stats")["total_net_output_bytes"] - sent_before < 500_000
    for limit in (1, 5, 30):
        assert get_popular_urls(limit=limit) == ranked(all_days, limit)
        assert get_popular_urls(limit=limit, days=1) == ranked(one_day, limit)
    total_big = sum(n for (_, t), n in [*pending.items(), *stored.items()] if t.view_name == "big")
    assert get_popular_view_names(limit=2) == [("big", total_big), ("stored", 15)]
    assert get_popular_view_names(limit=1, days=1) == [("big", total_big - 4 * (BIG // 1000))]
    assert PageView.get_view_count(url="/big/7/") == pending[(today, page(7))] + 4


@pytest.mark.usefixtures("redis_url")
def test_equal_totals_rank_by_key_across_the_database_and_redis() -> None:
    today = current_day()
    # 100 pages of 2 views each: some stored, some pending, some split between the two.
    stored = {(today, page(i)): 2 for i in range(0, 100, 3)}
    stored.update({(today, page(i)): 1 for i in range(1, 100, 3)})
    pending = {(today, page(i)): 1 for i in range(1, 100, 3)}
    pending.update({(today, page(i)): 2 for i in range(2, 100, 3)})
    write_batch(uuid.uuid4().hex, [], stored)
    ship_totals(pending)
    urls = sorted(f"/big/{i}/" for i in range(100))
    for limit in (1, 7, 40, 100, 150):
        assert get_popular_urls(limit=limit) == [(u, 2) for u in urls[:limit]]


@pytest.mark.usefixtures("redis_url")
def test_objects_named_by_pk_and_by_slug_over_several_days() -> None:
    today = current_day()
    days = [today - timedelta(days=d) for d in range(3)]
    articles = [Article.objects.create(title=str(i), slug=f"slug-{i}") for i in range(40)]
    label = "tests.article"

    def by_pk(a: Article) -> Target:
        return Target(f"/articles/{a.pk}/", "article-detail", label, "pk", str(a.pk))

    def by_slug(a: Article) -> Target:
        return Target(f"/by-slug/{a.slug}/", "article-slug", label, "slug", a.slug)

    stored: dict[tuple[date, Target], int] = {}
    pending: dict[tuple[date, Target], int] = {}
    for i, a in enumerate(articles):
        stored[(days[i % 3], by_pk(a))] = i % 5
        pending[(days[(i + 1) % 3], by_pk(a))] = (i * 7) % 6
        pending[(days[i % 2], by_slug(a))] = (i * 3) % 4  # the same object, by slug
    write_batch(uuid.uuid4().hex, [], {k: n for k, n in stored.items() if n})
    ship_totals({k: n for k, n in pending.items() if n})

    def views(a: Article, first: date | None = None) -> Counter[date]:
        found: Counter[date] = Counter()
        for source in (stored, pending):
            for (day, target), n in source.items():
                if target.value in (str(a.pk), a.slug) and (first is None or day >= first):
                    found[day] += n
        return found

    for first, window in ((None, None), (days[1], 2)):
        totals = Counter({a.pk: sum(views(a, first).values()) for a in articles})
        expected = sorted(
            ((a, totals[a.pk]) for a in articles if totals[a.pk]),
            key=lambda an: (-an[1], str(an[0].pk)),
        )
        for limit in (1, 6, 40):
            assert (
                PageView.get_popular_objects(Article, limit=limit, days=window)
                == (expected[:limit])
            )
    for a in articles[:6]:
        assert PageView.get_views_by_period(a) == sum(views(a).values())
        assert PageView.get_views_by_period(a, days=2) == sum(views(a, days[1]).values())
        assert PageView.get_daily_views(a, days=3) == {d: views(a)[d] for d in reversed(days)}
