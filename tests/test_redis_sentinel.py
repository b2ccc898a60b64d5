"""The Redis path behind a real Sentinel (tests/redis_sentinel.py: a primary, its replica,
one Sentinel): shipping, live reads and drains reach the primary the Sentinel names, and
after the primary is SIGKILLed and the replica promoted, the next ones reach the new
primary; counts stay exact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.checks import check_redis_reachable
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from django_pageviews.redis.client import close_client, get_client
from django_pageviews.redis.drain import drain_redis
from django_pageviews.redis.sentinels import SentinelPrimary
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import BROWSER_UA, asgi_requests, distinct_visitors, wsgi_get
from tests.processes import wait_for
from tests.redis_sentinel import PrivateSentinel
from tests.test_redis_pipeline import stored_views

SPILLED = "spilled_redis_down"

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sentinel() -> Iterator[PrivateSentinel]:
    deployment = PrivateSentinel()
    deployment.start()
    try:
        with override_settings(
            PAGEVIEW_ASYNC_PROCESSING=True,
            PAGEVIEW_REDIS_URL=deployment.url,
            PAGEVIEW_REDIS_SENTINELS=deployment.sentinels,
        ):
            yield deployment
            batcher.discard()
            close_client()
    finally:
        deployment.close()


def visitors(tag: str, n: int) -> list[tuple[str, str, dict[str, str]]]:
    """GET /plain/ by ``n`` visitors of their own (none throttled by another group)."""
    return [("GET", "/plain/", {"user-agent": f"{BROWSER_UA} {tag}/{i}"}) for i in range(n)]


def primary_keys(port: int) -> int:
    import redis

    with redis.Redis(port=port) as client:
        return int(client.dbsize())


def test_views_reach_the_primary_the_sentinel_names(sentinel: PrivateSentinel) -> None:
    assert isinstance(get_client(), SentinelPrimary)
    assert check_redis_reachable() == []
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(4)])
    for headers in distinct_visitors(3):
        wsgi_get("/async/", **headers)
    batcher.ship_all()
    assert primary_keys(sentinel.primary.port) > 0  # shipped to the primary itself
    assert PageView.get_view_count() == 7
    assert drain_redis(time_budget=None).views == 7
    assert stored_views() == 7
    assert PageView.get_view_count() == 7


def test_a_primary_killed_and_its_replica_promoted(sentinel: PrivateSentinel) -> None:
    """Views pending in the primary (replicated), then the primary SIGKILLed: views sent
    while no primary answers spill to the database path; once the Sentinel has promoted
    the replica, shipping and draining reach it. Nothing lost, nothing twice."""
    asgi_requests(visitors("before", 5))
    wait_for(lambda: primary_keys(sentinel.replica.port) > 0, "the replica to have the views")
    sentinel.primary.process.kill()  # type: ignore[union-attr]
    sentinel.primary.process.wait()  # type: ignore[union-attr]
    sentinel.primary.process = None
    spilled = stats.snapshot().get(SPILLED, 0)
    asgi_requests(visitors("during", 3))  # no primary answers
    assert stats.snapshot().get(SPILLED, 0) - spilled == 3
    wait_for(sentinel.promoted, "the failover")
    asgi_requests(visitors("after", 4))
    flush()  # the new primary's views (the spilled ones: by the writer, or here)
    assert stored_views() == 12
    assert PageView.get_view_count(url="/plain/") == 12


def test_a_service_name_the_sentinels_do_not_monitor(sentinel: PrivateSentinel) -> None:
    """A typo in the service name: the deploy check says which name no Sentinel knows,
    and views go to the fallback (spilled to the database path), none lost."""
    with override_settings(PAGEVIEW_REDIS_URL="redis://no-such-service/0"):
        errors = check_redis_reachable()
        assert [e.id for e in errors] == ["django_pageviews.E030"]
        assert "'no-such-service'" in errors[0].msg
        spilled = stats.snapshot().get(SPILLED, 0)
        responses = asgi_requests(visitors("asgi", 3))
        assert [r.status_code for r in responses] == [200] * 3
        for _, path, headers in visitors("wsgi", 2):
            assert wsgi_get(path, **headers).status_code == 200
        batcher.ship_all()
        batcher.ship_all(give_up=True)  # as at exit: what waits for a retry is spilled
        assert stats.snapshot().get(SPILLED, 0) - spilled == 5
    flush()  # the spilled views (a flush that cannot ask Redis raises, as on one server)
    assert stored_views() == 5
    assert primary_keys(sentinel.primary.port) == 0  # nothing reached any Redis
