"""Live reads on a full Redis (issue #10, items 5a and 8 together): the drain works on a
Redis at its ``maxmemory`` (noeviction), and so must the hold a live read takes on new
claims while the drain runs, or the read falls back to the database alone and misses
every view still in Redis. Real private Redis servers (7.x and 6.2), really full."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView
from django_pageviews.redis.buffer import CLAIM_HELD, HOLD_SUFFIX, Keys
from django_pageviews.redis.client import get_client
from django_pageviews.redis.scripts import claim, ship
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.redis.snapshots import hold_claims
from tests.redis_server import SERVERS, PrivateRedis, redis62_binary

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=SERVERS)
def full_redis(request: pytest.FixtureRequest) -> Iterator[tuple[redis.Redis, int]]:
    """A private Redis holding some pending views, then made full: (client, views)."""
    server = PrivateRedis(
        maxmemory="64mb", binary=redis62_binary() if request.param == "6.2" else None
    )
    server.start()
    try:
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=server.url):
            client = get_client()
            events = [
                PageViewEvent(
                    uuid.uuid4().hex, time.time(), Target(f"/f/{i}/", "", "", "", ""), "", "", ""
                )
                for i in range(200)
            ]
            keys, args = build_shipment(events, Counter()).script_args()
            ship(keys=keys, args=args, client=client)
            used = client.info("memory")["used_memory"]
            client.config_set("maxmemory", used - 64 * 1024)
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                client.set("probe", "x")  # full, for every command that may grow memory
            yield client, len(events)
    finally:
        server.close()


def test_a_live_read_holds_claims_off_on_a_full_redis(
    full_redis: tuple[redis.Redis, int],
) -> None:
    client, views = full_redis
    keys = Keys.current()
    hold = keys.seq + HOLD_SUFFIX
    with hold_claims(client), hold_claims(client):  # two readers at once
        assert client.get(hold) == "2"
        claimed = claim(
            keys=[
                keys.pending,
                keys.events,
                keys.claims,
                keys.chunk("b"),
                keys.evchunk("b"),
                keys.seq,
                keys.oldest,
                keys.claimmarks,
                keys.epoch,
            ],
            args=[100, time.time(), "b", "", 0],
            client=client,
        )
        assert claimed == CLAIM_HELD
    assert client.exists(hold) == 0
    assert PageView.get_view_count() == views
