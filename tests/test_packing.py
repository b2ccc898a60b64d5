"""The compact raw-event elements (redis/packing.py): exact round trips, the JSON fallback, and
what an element that cannot be read becomes."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from django_pageviews.events import PK, PageViewEvent, Target
from django_pageviews.redis.packing import ZLIB_MIN_BYTES, pack, unpack, unpack_all, views
from django_pageviews.wire import decode_event, encode_event
from tests.conftest import BROWSER_UA

ARTICLE = Target("/articles/ü-1/", "article-detail", "tests.article", PK, "1")
PAGE = Target("/page/", "", "", "", "")


def event(
    target: Target = ARTICLE, ua: str = BROWSER_UA, ip: str | None = "192.0.2.0"
) -> PageViewEvent:
    return PageViewEvent(uuid.uuid4().hex, time.time(), target, ip, ua, uuid.uuid4().hex)


def packed(events: list[PageViewEvent]) -> bytes:
    """The one compact element of ``events``."""
    (element,) = pack(events)
    assert isinstance(element, bytes)
    return element


@pytest.mark.parametrize("n", [1, 2, 50, 500])
def test_events_come_back_exactly(n: int) -> None:
    events = [
        event(
            ARTICLE if i % 3 else PAGE,
            f"{BROWSER_UA} {i % 7}",
            None if i % 5 == 0 else f"198.51.100.{i % 9}",
        )
        for i in range(n)
    ]
    element = packed(events)
    assert views(element) == n
    assert unpack(element) == events
    assert [decode_event(e).timestamp for e in unpack(element)] == [e.timestamp for e in events]


def test_small_tables_stay_plain_and_big_ones_are_compressed() -> None:
    small = packed([event(PAGE, ua="u")])
    big = packed([event(ua=f"{BROWSER_UA} {i}") for i in range(20)])
    assert len(BROWSER_UA) * 20 > ZLIB_MIN_BYTES
    assert small.startswith(b"#1:p") and big.startswith(b"#20:z")
    assert len(big) < 20 * len(BROWSER_UA)  # the user agents' shared text is stored once


def test_separators_newlines_and_quotes_in_the_table() -> None:
    odd = Target('/a\n"b\\/', "v\n", "", "", "")
    events = [event(odd, ua='ua "with" \n newline')]
    assert unpack(pack(events)[0]) == events


def test_ids_the_compact_form_cannot_hold_go_as_json_one_per_event() -> None:
    given = event()._replace(event_id="ABCDEF0123456789ABCDEF0123456789")  # upper case
    others = [event(), event()._replace(visitor_hash="")]
    for events in ([given, event()], others):
        elements = pack(events)
        assert elements == [encode_event(e) for e in events]
        assert [decode_event(r) for r in unpack_all(elements)] == events


def test_old_json_elements_are_read_as_one_event_each() -> None:
    e = event()
    old = encode_event(e)
    assert views(old) == 1 and views(old.encode()) == 1
    assert unpack(old.encode()) == [old]
    assert decode_event(unpack(old.encode())[0]) == e


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:-5],  # records cut short
        lambda b: b[:12],  # the table cut short
        lambda b: b.replace(b"#3:", b"#4:", 1),  # a count that does not match
        lambda b: b[:3] + b"x" + b[4:],  # an unknown flag
        lambda b: b"#" + b"\xff" * 20,  # no header
    ],
)
def test_an_element_that_cannot_be_read_is_one_unreadable_record(mangle: object) -> None:
    element = packed([event(ua=f"{BROWSER_UA} {i}") for i in range(3)])
    broken = mangle(element)  # type: ignore[operator]
    (record,) = unpack(broken)
    assert isinstance(record, str)
    with pytest.raises(ValueError):
        decode_event(record)


def test_a_huge_shipment_is_packed_in_parts() -> None:
    events = [event(PAGE, ua=str(i)) for i in range(70_000)]
    elements = pack(events)
    assert len(elements) > 1
    assert sum(views(e) for e in elements) == len(events)
    assert unpack_all(elements) == events


def test_json_of_the_table_is_what_a_reader_expects() -> None:
    element = packed([event(PAGE, ua="u", ip=None)])
    table = element[len(b"#1:p") :].partition(b"\n")[0]
    assert json.loads(table) == [[None, "u"], [list(PAGE)]]


@pytest.mark.django_db(transaction=True)
def test_a_corrupted_element_is_skipped_and_the_others_drain(redis_url: str) -> None:
    from django_pageviews import stats
    from django_pageviews.models import PageView, SkippedDaily
    from django_pageviews.redis.buffer import Keys
    from django_pageviews.redis.client import get_client
    from django_pageviews.redis.drain import drain_redis

    good = [event(PAGE, ua=f"{BROWSER_UA} {i}") for i in range(30)]
    element = packed(good)
    bad = packed([event(PAGE, ua=f"{BROWSER_UA} {i}") for i in range(5)])
    old = event(PAGE)
    get_client().rpush(Keys.current().events, bad[:-7], element, encode_event(old))
    before = stats.snapshot().get(stats.SKIP_INVALID, 0)
    drain_redis(time_budget=None)
    assert set(PageView.objects.values_list("event_id", flat=True)) == {
        uuid.UUID(e.event_id) for e in [*good, old]
    }
    assert stats.snapshot().get(stats.SKIP_INVALID, 0) == before + 1
    assert SkippedDaily.objects.get().reason == stats.SKIP_INVALID


def test_unpacked_events_equal_the_packed_ones_field_for_field() -> None:
    """Unpacking builds the events' tuples directly: every field is there, the in-memory
    ones at their defaults."""
    shipped = [
        PageViewEvent(
            f"{i:032x}",
            1_700_000_000.5 + i,
            Target(f"/{i % 2}/", "v", "", "", ""),
            "192.0.2.0",
            "UA",
            f"{i + 7:032x}",
        )
        for i in range(3)
    ]
    (element,) = pack(shipped)
    assert isinstance(element, bytes)
    unpacked = unpack(element)
    assert unpacked == shipped
    assert [e._asdict() for e in unpacked if isinstance(e, PageViewEvent)] == [
        e._asdict() for e in shipped
    ]
