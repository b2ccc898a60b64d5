"""A restored group too big for one command (issue #10, item 5b and 5c together).

A Redis restored from an old snapshot with a large backlog parks it all as one group, and
``replay_restored()`` handed the group back in one REPLAY call: count pairs, dimension
pairs, list triples and raw events of every parked view. Redis 6.2 (the oldest version
supported) refuses a command of more than 1,048,576 arguments (it resets the
connection), so the group could never be replayed; and on any Redis the whole group
became one claim, written in one transaction. Real private Redis servers, really restored
from an RDB snapshot."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from django.db.models import Sum
from django.test import override_settings

from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.redis.buffer import claim, read_claim, status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, write_claim
from django_pageviews.redis.restore import park_restored, replay_restored, restored_status
from django_pageviews.redis.scripts import ship
from django_pageviews.redis.shipping import build_shipment
from tests.redis_server import SERVERS, PrivateRedis, async_redis

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = 45_000  # 25 REPLAY arguments each: over 1,048,576
BATCH = 5_000


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[PrivateRedis]:
    with async_redis(
        request.param,
        # Scripts this big run for a second or more, longer under a loaded machine:
        # the client waits for them (the point here is the number of arguments).
        PAGEVIEW_REDIS_SOCKET_TIMEOUT=120,
        PAGEVIEW_STORE_RAW=False,
        PAGEVIEW_BATCH_SIZE=BATCH,
    ) as private:
        yield private


def page(i: int) -> Target:
    """A distinct object, URL and view name: the most dimensions and list entries."""
    return Target(f"/o/{i}/", f"view-{i}", "tests.nosuchmodel", "slug", f"s{i}")


def test_a_big_restored_group_is_replayed_in_batches(server: PrivateRedis) -> None:
    client = get_client()
    now = time.time()
    for first in range(0, PAGES, 5000):
        events = [
            PageViewEvent(uuid.uuid4().hex, now, page(i), None, "", "")
            for i in range(first, first + 5000)
        ]
        keys, args = build_shipment(events, Counter()).script_args()
        ship(keys=keys, args=args, client=client)
    redis.Redis.from_url(server.url).save()  # the snapshot: every page pending
    one = claim(client, 1)  # drained after the snapshot: the database is ahead
    assert one is not None
    assert write_claim(client, read_claim(client, one)) == 1
    server.restart()
    assert park_restored(client) is not None
    [group] = restored_status(client)
    assert group["views"] == PAGES
    batch_ids = replay_restored()
    assert len(batch_ids) == PAGES // BATCH
    assert restored_status(client) == []
    # Counts only: nothing tells the view written after the snapshot apart (see
    # replay_restored): it is counted again.
    assert cleanup().replayed == PAGES // BATCH
    assert status(client)["claimed_batches"] == 0
    assert PageViewDaily.objects.aggregate(n=Sum("views"))["n"] == PAGES + 1
    assert int(client.hget("{" + "pageviews" + "}:dims", "t") or 0) == 0


class Crash(BaseException):
    """The replaying process dies here: nothing after it runs (as under SIGKILL)."""


@override_settings(PAGEVIEW_STORE_RAW=False, PAGEVIEW_BATCH_SIZE=4)
def test_a_replay_stopped_between_slices_replays_the_rest_once(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_pageviews.redis import restore_replay

    client = get_client()
    now = time.time()
    events = [PageViewEvent(uuid.uuid4().hex, now, page(i % 10), None, "", "") for i in range(30)]
    keys, args = build_shipment(events, Counter()).script_args()
    ship(keys=keys, args=args, client=client)
    redis.Redis.from_url(private_redis.url).save()
    one = claim(client, 4)  # drained after the snapshot: 4 count fields of 3 views
    assert one is not None
    written = write_claim(client, read_claim(client, one))
    private_redis.restart()
    assert park_restored(client) is not None
    real = restore_replay._replay_slice
    calls: list[int] = []

    def dies_after_two_slices(*args: object) -> tuple[int, str | None]:
        if len(calls) == 2:
            raise Crash
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(restore_replay, "_replay_slice", dies_after_two_slices)
        with pytest.raises(Crash):
            replay_restored()
    [group] = restored_status(client)  # the rest stays parked, and shown
    assert (group["views"], group["count_fields"]) == (30 - 8 * 3, 10 - 8)
    assert status(client)["claimed_batches"] == 2
    assert len(replay_restored()) == 1
    assert restored_status(client) == []
    assert replay_restored() == []
    assert cleanup().replayed == 3
    # Counts only: every parked view is written once (those drained after the snapshot
    # too, as replay_restored says).
    assert written == 12
    assert PageViewDaily.objects.aggregate(n=Sum("views"))["n"] == 30 + written
    assert PageView.get_view_count() == 30 + written
    assert status(client)["claimed_batches"] == 0
