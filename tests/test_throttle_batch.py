"""The cross-process throttle of a micro-batch (``django_pageviews.redis.throttle``): one
script call on a real Redis sets each key once, for the time left in its window."""

from __future__ import annotations

import asyncio
import time

import redis
import redis.asyncio
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.redis.throttle import afirst_views, first_views

PREFIX = "{pageviews}:throttle:"


def event(key: str, age: float = 0.0) -> PageViewEvent:
    return PageViewEvent(
        event_id=key,
        timestamp=time.time() - age,
        target=Target("/p/", "", "", "", ""),
        ip_address=None,
        user_agent="ua",
        visitor_hash="",
        throttle_key=key,
    )


@override_settings(PAGEVIEW_THROTTLE_SECONDS=20)
def test_each_key_passes_once_across_calls(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        before = stats.snapshot().get(stats.SKIP_THROTTLED, 0)
        first = first_views(client, [event("a"), event("b"), event("a")], PREFIX)
        # Within one batch the second "a" is a reload too: the script sets keys in order.
        assert [e.throttle_key for e in first] == ["a", "b"]
        again = first_views(client, [event("b"), event("c")], PREFIX)
        assert [e.throttle_key for e in again] == ["c"]
        assert stats.snapshot().get(stats.SKIP_THROTTLED, 0) - before == 2
        ttl = client.pttl(PREFIX + "a")
        assert 0 < ttl <= 20_000
    finally:
        client.close()


@override_settings(PAGEVIEW_THROTTLE_SECONDS=20)
def test_expired_windows_and_unkeyed_events_are_not_checked(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        old = event("old", age=30)  # its window ended: nothing to check, it counts
        unkeyed = event("")
        assert first_views(client, [old, unkeyed], PREFIX) == [old, unkeyed]
        assert client.exists(PREFIX + "old") == 0
    finally:
        client.close()


@override_settings(PAGEVIEW_THROTTLE_SECONDS=20)
def test_async_twin_answers_the_same(redis_url: str) -> None:
    async def check() -> tuple[list[str], list[str]]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            one = await afirst_views(client, [event("x"), event("y")], PREFIX)
            two = await afirst_views(client, [event("y"), event("z")], PREFIX)
        finally:
            await client.aclose()
        return [e.throttle_key for e in one], [e.throttle_key for e in two]

    assert asyncio.run(check()) == (["x", "y"], ["z"])


@override_settings(PAGEVIEW_THROTTLE_SECONDS=20)
def test_an_unreachable_redis_lets_every_view_count() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens there
    try:
        events = [event("a"), event("a")]
        assert first_views(client, events, PREFIX) == events
    finally:
        client.close()
