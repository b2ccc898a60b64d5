"""The largest batch the checks accept, of pages that each have their own object, URL and
view name (issue #10, item 5b and the per-day lists together): its ACK needs 1,150,004
arguments (dimension pairs and list triples), and Redis 6.2 (the oldest version
supported) resets a connection that sends more than 1,048,576 in one command. The batch
was written, then never acknowledged: its keys stayed in Redis, and every drain and
cleanup failed on it again. Real private Redis servers."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db.models import Sum

from django_pageviews.checks import MAX_BATCH_SIZE
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.redis.buffer import status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import drain_redis
from django_pageviews.redis.scripts import ship
from django_pageviews.redis.shipping import build_shipment
from tests.redis_server import SERVERS, PrivateRedis, async_redis
from tests.test_seams_restore_lists import assert_nothing_left

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[PrivateRedis]:
    with async_redis(
        request.param,
        # Scripts this big run for a second or more, longer under a loaded machine:
        # the client waits for them (the point here is the number of arguments).
        PAGEVIEW_REDIS_SOCKET_TIMEOUT=120,
        PAGEVIEW_STORE_RAW=False,
        PAGEVIEW_BATCH_SIZE=MAX_BATCH_SIZE,
    ) as private:
        yield private


def test_the_largest_batch_of_distinct_pages_is_acknowledged(server: PrivateRedis) -> None:
    client = get_client()
    now = time.time()
    for first in range(0, MAX_BATCH_SIZE, 5000):
        events = [
            PageViewEvent(
                uuid.uuid4().hex,
                now,
                Target(f"/o/{i}/", f"view-{i}", "tests.nosuchmodel", "pk", str(i)),
                None,
                "",
                "",
            )
            for i in range(first, first + 5000)
        ]
        keys, args = build_shipment(events, Counter()).script_args()
        ship(keys=keys, args=args, client=client)
    result = drain_redis(time_budget=None)
    assert (result.batches, result.views, result.failed) == (1, MAX_BATCH_SIZE, 0)
    assert status(client)["claimed_batches"] == 0
    assert PageViewDaily.objects.aggregate(n=Sum("views"))["n"] == MAX_BATCH_SIZE
    assert PageView.get_view_count() == MAX_BATCH_SIZE
    assert_nothing_left(client)
    assert client.keys("*ackargs*") == []
