"""Data left in Redis by the scripts of an earlier version (issue #10, item 5 and the
upgrade): pending counts, totals and raw events with no per-day list entries, no epoch,
no claim marks, and a claim whose flusher stopped. Written by hand as the earlier SHIP and
CLAIM scripts left them; the current drain must write each view once and leave nothing
behind (no list, total, claim or mark). Real Redis, real database."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from django.db.models import Sum

from django_pageviews.events import PageViewEvent, Target, current_day
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.redis.buffer import Keys
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis
from django_pageviews.wire import count_field, dimension_totals, encode_event
from tests.test_seams_restore_lists import assert_nothing_left

pytestmark = pytest.mark.django_db(transaction=True)


def old_views(url: str, n: int) -> list[PageViewEvent]:
    target = Target(url, "old-view", "", "", "")
    return [PageViewEvent(uuid.uuid4().hex, time.time(), target, None, "", "") for _ in range(n)]


def test_data_of_an_earlier_version_is_drained_once_and_leaves_nothing(redis_url: str) -> None:
    client = get_client()
    keys = Keys.current()
    pending = old_views("/old/a/", 4) + old_views("/shared/", 2)
    claimed = old_views("/old/b/", 3) + old_views("/shared/", 1)
    counts = Counter(count_field(current_day(), e.target) for e in pending)
    chunk = Counter(count_field(current_day(), e.target) for e in claimed)
    dims = dimension_totals([*counts.items(), *chunk.items()])
    with client.pipeline(transaction=True) as pipe:  # as the earlier SHIP and CLAIM left it
        pipe.hset(keys.pending, mapping=dict(counts))
        pipe.rpush(keys.events, *(encode_event(e) for e in pending))
        pipe.hset(keys.dims, mapping=dict(dims))
        pipe.hset(keys.chunk("old-claim"), mapping=dict(chunk))
        pipe.rpush(keys.evchunk("old-claim"), *(encode_event(e) for e in claimed))
        pipe.zadd(keys.claims, {"old-claim": time.time() - 3600})
        pipe.set(keys.seq, 7)
        pipe.execute()
    assert PageView.get_view_count() == 10
    # New views shipped by the current version meanwhile, one of the same page.
    from django_pageviews.redis.scripts import ship
    from django_pageviews.redis.shipping import build_shipment

    new = old_views("/shared/", 5) + old_views("/new/", 2)
    shipment_keys, args = build_shipment(new, Counter()).script_args()
    ship(keys=shipment_keys, args=args, client=client)
    assert PageView.get_view_count() == 17
    assert PageView.get_view_count(url="/shared/") == 8
    assert cleanup().replayed == 1  # the earlier version's stopped claim
    assert drain_redis(time_budget=None).views == 13
    assert drain_redis(time_budget=None).views == 0
    rows = PageViewDaily.objects.values_list("url").annotate(n=Sum("views"))
    assert dict(rows) == {"/old/a/": 4, "/old/b/": 3, "/shared/": 8, "/new/": 2}
    assert PageView.objects.count() == 17
    assert PageView.get_view_count() == 17
    assert_nothing_left(client)
    assert client.hlen(keys.claimmarks) == 0
