"""A database outage under steady traffic (issue #10, items 3 and 8 together).

Each drain that finds the database down keeps its claim, for a later retry. The next
drain (the beat schedules one every few seconds) must not claim another batch meanwhile:
an hour's outage would leave hundreds of open claims, which every live read then lists
(SNAPSHOT returns each claim's counts), and which cleanup only writes BUFFER_TIMEOUT
later. Real Redis, real database refusing writes (a read-only session)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_pageviews.models import PageView
from django_pageviews.redis.buffer import status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import drain_redis
from tests.db_faults import read_only
from tests.test_drain_faults import send_views, total

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(PAGEVIEW_BATCH_SIZE=2)
def test_drains_during_an_outage_keep_one_claim_and_write_it_first(redis_url: str) -> None:
    good = send_views(good_pages=8)  # 9 pages, raw events: many claims of 2
    client = get_client()
    with read_only():
        for _ in range(4):  # the beat's drains while the database is down
            result = drain_redis(time_budget=None)
            assert (result.batches, result.failed) == (0, 1)
        assert status(client)["claimed_batches"] == 1
        assert PageView.get_view_count() == good
    result = drain_redis(time_budget=None)  # the database is back
    assert (result.views, result.failed) == (good, 0)
    assert status(client)["claimed_batches"] == 0
    assert total() == good
    assert PageView.objects.count() == good
    assert PageView.get_view_count() == good
