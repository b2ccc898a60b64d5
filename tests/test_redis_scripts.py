"""SHIP derives the live totals and day lists that ACK takes back; CLAIM takes whole
raw-event elements up to BATCH_SIZE views. On Redis 6.2 and 7."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import redis
from django.test import override_settings

from django_pageviews.conf import redis_url
from django_pageviews.events import PK, PageViewEvent, Target
from django_pageviews.redis.buffer import (
    Keys,
    Shipment,
    ack,
    claim,
    count_views,
    raw_event_count,
    read_claim,
    status,
)
from django_pageviews.redis.client import get_client
from django_pageviews.redis.packing import pack
from django_pageviews.redis.scripts import ship
from django_pageviews.toplists import LIST_BUCKETS, list_entries, member_bucket
from django_pageviews.wire import (
    TOTAL,
    count_field,
    decode_event,
    dimension_slot,
    dimension_totals,
    encode_event,
    skipped_field,
)
from tests.redis_server import SERVERS, PrivateRedis, redis62_binary

pytestmark = pytest.mark.django_db(transaction=True)

TARGETS = [
    Target("/articles/1/", "article-detail", "tests.article", PK, "1"),
    Target("/articles/é/", "article-detail", "tests.article", "slug", "é"),
    Target("/plain/", "", "", "", ""),
    Target("/named/", "home", "", "", ""),
    Target("/no-view/", "", "tests.article", PK, "2"),
]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[PrivateRedis]:
    private = PrivateRedis(binary=redis62_binary() if request.param == "6.2" else None)
    private.start()
    try:
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=private.url):
            yield private
    finally:
        private.close()


def event(target: Target) -> PageViewEvent:
    return PageViewEvent(uuid.uuid4().hex, time.time(), target, None, "ua", uuid.uuid4().hex)


def ship_counts(counts: Counter[str], raw: list[bytes | str] | None = None) -> None:
    keys, args = Shipment(counts, raw or [], []).script_args()
    ship(keys=keys, args=args, client=get_client())


def live_state(client: Any) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """The live totals and lists, totals named as the reads name them (for the totals
    kept under a digest: as the digests of ``dimension_totals`` of what was shipped)."""
    keys = Keys.current()
    dims = {d: int(n) for d, n in client.hgetall(keys.dims).items()}
    dims |= {f"{b}:{f.hex()}": n for (b, f), n in bucket_totals(client).items()}
    lists: dict[tuple[str, str], int] = {}
    for name, total in client.zrange(keys.top, 0, -1, withscores=True):
        members = []
        for bucket in range(LIST_BUCKETS):  # each member in its own set (decision 23)
            found = client.zrange(f"{keys.top}:{name}:{bucket}", 0, -1, withscores=True)
            assert all(member_bucket(name[:-11], m) == bucket for m, _ in found)
            members += found
        assert sum(-int(s) for _, s in members) == int(total)
        lists.update({(name, m): -int(s) for m, s in members})
    return dims, lists


def bucket_totals(client: Any) -> dict[tuple[int, bytes], int]:
    """(bucket, field) -> views of every live total kept in the buckets (decision 23)."""
    raw = redis.Redis.from_url(redis_url())  # the fields are bytes, not text
    found: dict[tuple[int, bytes], int] = {}
    prefix = Keys.current().dims + ":"
    for key in raw.scan_iter(match=prefix.encode() + b"*"):
        bucket = int(key[len(prefix) :])
        fields: dict[Any, Any] = raw.hgetall(key)  # bytes: a client without decoding
        found |= {(bucket, f): int(n) for f, n in fields.items()}
    raw.close()
    return found


def named(totals: Counter[str]) -> dict[str, int]:
    """Live totals as ``live_state`` names them."""
    out: dict[str, int] = {}
    for name, n in totals.items():
        if name == TOTAL:
            out[name] = n
        else:
            bucket, field = dimension_slot(name)
            out[f"{bucket}:{field.hex()}"] = n
    return out


def test_ship_derives_what_ack_takes_back(server: PrivateRedis) -> None:
    days = [date(2026, 1, 31), date(2026, 2, 1)]
    counts = Counter(
        {count_field(d, t): i + j + 1 for i, t in enumerate(TARGETS) for j, d in enumerate(days)}
    )
    counts[skipped_field(days[0], "bot")] = 4  # no dimension, no list
    ship_counts(counts)
    ship_counts(Counter({count_field(days[0], TARGETS[0]): 2}))
    client = get_client()
    dims, lists = live_state(client)
    both = counts + Counter({count_field(days[0], TARGETS[0]): 2})
    assert dims == named(dimension_totals(both.items()))
    assert lists == dict(list_entries(both.items()))
    batch_id = claim(client, 1000)
    assert batch_id is not None
    assert ack(client, read_claim(client, batch_id))
    assert live_state(client) == ({}, {})


def test_claim_takes_whole_elements_up_to_n_views(server: PrivateRedis) -> None:
    target = TARGETS[2]
    sizes = [3, 4, 1, 10, 2]
    shipped = []
    for size in sizes:
        events = [event(target) for _ in range(size)]
        shipped.append(events)
        ship_counts(Counter({count_field(date.today(), target): size}), pack(events))
    old = event(target)  # an element of the previous version: one JSON view
    get_client().rpush(Keys.current().events, encode_event(old))
    client = get_client()
    taken = []
    for _ in range(3):
        batch_id = claim(client, 8)
        assert batch_id is not None
        taken.append([decode_event(r) for r in read_claim(client, batch_id).raw_events])
    # 3+4+1; 10 alone (more than 8, never split); 2 and the old element's 1
    assert [len(t) for t in taken] == [8, 10, 3]
    assert taken == [shipped[0] + shipped[1] + shipped[2], shipped[3], shipped[4] + [old]]
    assert claim(client, 8) is None


def test_status_counts_the_views_of_the_elements(server: PrivateRedis) -> None:
    client = get_client()
    events_key = Keys.current().events
    client.rpush(events_key, *(encode_event(event(TARGETS[2])) for _ in range(2100)))
    for size in (1, 7, 50):
        client.rpush(events_key, *pack([event(TARGETS[0]) for _ in range(size)]))
    assert count_views(client, events_key) == raw_event_count(client, events_key) == 2158
    assert status(client)["pending_raw_events"] == 2158
    assert count_views(client, Keys.current().prefix + "nothing") == 0
