"""Set-aside data is shown and replayed exactly once, including whole batches that older
versions set aside (``aside:chunk:<id>`` / ``aside:evchunk:<id>`` in the ``aside`` set),
which no code read before (issue #10, item 3)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.test import override_settings
from redis.commands.core import Script

from django_pageviews.models import PageView, PageViewDaily, SkippedDaily
from django_pageviews.redis import aside as redis_aside
from django_pageviews.redis.buffer import Keys, claim, read_claim
from django_pageviews.redis.client import get_client
from django_pageviews.storage import write_batch
from django_pageviews.wire import dimension_totals, parse_count_field
from tests.conftest import asgi_requests, distinct_visitors
from tests.db_faults import allow_all, refuse_url

pytestmark = pytest.mark.django_db(transaction=True)

POISON = "/long/poison/"

# The ACK script of earlier development versions, whose "keep" mode set a whole batch aside after
# five failed writes (copied as it was).
OLD_ACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
for i = 3, #ARGV, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if ARGV[2] == 'keep' then
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[5]) end
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('RENAME', KEYS[4], KEYS[6]) end
  redis.call('ZADD', KEYS[7], redis.call('TIME')[1], ARGV[1])
else
  redis.call('DEL', KEYS[3], KEYS[4])
end
return 1
"""


def set_aside_the_old_way(client: Any, batch_id: str | None = None) -> str:
    """Claim what Redis holds (or take claim ``batch_id``) and set it aside as earlier
    development versions did."""
    batch_id = batch_id or claim(client, 1000)
    assert batch_id is not None
    batch = read_claim(client, batch_id)
    keys = Keys.current()
    args: list[Any] = [batch_id, "keep"]
    for dim, n in dimension_totals(batch.counts.items()).items():
        args += (dim, n)
    Script(client, OLD_ACK.encode())(
        keys=[
            keys.dims,
            keys.claims,
            keys.chunk(batch_id),
            keys.evchunk(batch_id),
            keys.aside_chunk(batch_id),
            keys.aside_evchunk(batch_id),
            keys.aside,
        ],
        args=args,
    )
    return batch_id


def total() -> int:
    return PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0


def invalid() -> int:
    rows = SkippedDaily.objects.filter(reason="invalid")
    return rows.aggregate(n=Sum("requests"))["n"] or 0


def flush(*args: str) -> str:
    out = StringIO()
    call_command("pageviews_flush", *args, stdout=out)
    return out.getvalue()


def status() -> dict[str, Any]:
    out = StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_an_old_set_aside_batch_is_shown_and_replayed_once(redis_url: str) -> None:
    asgi_requests([("GET", f"/pages/{i % 3}/", h) for i, h in enumerate(distinct_visitors(7))])
    client = get_client()
    batch_id = set_aside_the_old_way(client)
    assert PageView.get_view_count() == 0  # out of the live totals, as it was
    assert status()["set_aside"] == {"batches": 1, "count_fields": 3, "raw_events": 7, "views": 7}
    assert "Replayed 1 set-aside records (7 views)" in flush("--retry-aside")
    assert (total(), PageView.objects.count(), invalid()) == (7, 7, 0)
    assert PageView.get_view_count() == 7
    assert "Replayed 0 set-aside records" in flush("--retry-aside")
    assert (total(), PageView.objects.count()) == (7, 7)
    assert status()["set_aside"]["batches"] == 0
    assert redis_aside.aside_ids(client) == []
    assert not client.exists(Keys.current().aside_chunk(batch_id))


def test_an_old_set_aside_batch_already_written_is_not_written_again(redis_url: str) -> None:
    """Older versions counted a lost commit acknowledgement as a failure: a batch could be
    set aside although its id (and its views) were in the database."""
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(4)])
    client = get_client()
    batch_id = claim(client, 1000)
    assert batch_id is not None
    totals = {parse_count_field(f): n for f, n in read_claim(client, batch_id).counts.items()}
    assert write_batch(batch_id, [], totals) == 4
    set_aside_the_old_way(client, batch_id)  # the old flusher then failed to acknowledge
    assert "Replayed 1 set-aside records (0 views)" in flush("--retry-aside")
    assert (total(), PageView.objects.count()) == (4, 0)
    assert redis_aside.aside_ids(client) == []


def test_an_old_set_aside_batch_with_a_poison_record_is_split(redis_url: str) -> None:
    asgi_requests([("GET", f"/pages/{i}/", {}) for i in range(5)] + [("GET", POISON, {})])
    client = get_client()
    set_aside_the_old_way(client)
    refuse_url(PageViewDaily, POISON)
    try:
        assert "Replayed 1 set-aside records (5 views)" in flush("--retry-aside")
        assert (total(), invalid()) == (5, 1)
        report = status()["set_aside"]
        assert (report["batches"], report["views"]) == (1, 1)
        assert "1 still refused" in flush("--retry-aside")
    finally:
        allow_all(PageViewDaily)
    assert "Replayed 1 set-aside records (1 views)" in flush("--retry-aside")
    assert (total(), invalid(), PageView.objects.count()) == (6, 0, 6)
    assert status()["set_aside"]["batches"] == 0


def test_retry_aside_without_redis_is_an_error() -> None:
    with (
        override_settings(PAGEVIEW_ASYNC_PROCESSING=False),
        pytest.raises(CommandError, match="needs PAGEVIEW_ASYNC_PROCESSING"),
    ):
        flush("--retry-aside")
