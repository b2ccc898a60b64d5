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
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import override_settings

from django_pageviews import drain
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.live import READ_INEXACT
from django_pageviews.models import PageView
from django_pageviews.producer import build_shipment
from django_pageviews.redis_buffer import CLAIM_HELD, HOLD_SUFFIX, Keys, claim, hold_claims
from django_pageviews.redis_client import get_client
from django_pageviews.redis_scripts import claim as claim_script
from django_pageviews.redis_scripts import ship
from django_pageviews.reports import get_popular_urls, get_popular_view_names
from django_pageviews.stats import snapshot as stats_snapshot
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


def check_every_read(total: int, inside_transaction: bool) -> None:
    top = expected_top(5)
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
    assert get_client().hlen(Keys.current().pending) == 0


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
        assert client.hlen(keys.pending) == 8
        assert client.zcard(keys.claims) == 0
        # A drain asking meanwhile is refused, and asks again (the script runs again).
        calls = script_calls(client)
        claimed: list[str | None] = []
        waiting = threading.Thread(target=lambda: claimed.append(claim(get_client(), BATCH)))
        waiting.start()
        wait_for(lambda: script_calls(client) >= calls + 3, "a held claim asking again")
        assert client.hlen(keys.pending) == 8
        assert waiting.is_alive()
    waiting.join()
    assert claimed[0] is not None
    assert client.exists(keys.seq + HOLD_SUFFIX) == 0
    assert client.hlen(keys.pending) == 8 - BATCH


def script_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))
