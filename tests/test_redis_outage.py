"""Redis stopped while requests keep coming: no request fails, no view is lost unless the
site chose to drop, and the producers recover by themselves."""

from __future__ import annotations

import pytest
from django.db.models import Sum
from django.test import override_settings

from django_pageviews import salts, stats
from django_pageviews.buffer import buffer
from django_pageviews.models import PageViewDaily, VisitorSalt
from django_pageviews.recorder import flush
from django_pageviews.redis.sync_batcher import batcher
from tests.conftest import asgi_requests, wsgi_get
from tests.processes import wait_for
from tests.redis_server import PrivateRedis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("private_redis"),
]


def stored_views() -> int:
    return PageViewDaily.objects.aggregate(total=Sum("views"))["total"] or 0


def counter(name: str) -> int:
    return stats.snapshot().get(name, 0)


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_outage_spills_to_the_database_and_recovers(private_redis: PrivateRedis) -> None:
    private_redis.stop()
    spilled_before = counter("spilled_redis_down")
    responses = asgi_requests([("GET", "/async/", {})] * 40)
    assert {r.status_code for r in responses} == {200}
    for _ in range(5):
        assert wsgi_get("/plain/").status_code == 200
    batcher.ship_all(give_up=True)  # what the WSGI process does at exit
    assert counter("spilled_redis_down") - spilled_before == 45
    assert buffer.flush() == 45
    assert stored_views() == 45

    private_redis.start()
    # The thread batcher's breaker doubles its pause on each failed retry: how many
    # happened depends on how long the outage above took. Wait for it to close; nothing
    # fails meanwhile (its queue and retry slot are empty since ship_all(give_up=True)).
    wait_for(batcher.breaker.allows, "the thread batcher's breaker to let shipments through")
    asgi_requests([("GET", "/async/", {})] * 10)
    for _ in range(3):
        wsgi_get("/plain/")
    batcher.ship_all()
    assert batcher.retry is None
    assert counter("spilled_redis_down") - spilled_before == 45  # nothing more spilled
    assert flush() == 13
    assert stored_views() == 58


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0, PAGEVIEW_REDIS_FALLBACK="drop")
def test_outage_with_drop_counts_every_dropped_view(private_redis: PrivateRedis) -> None:
    private_redis.stop()
    dropped_before = counter("dropped_redis_down")
    responses = asgi_requests([("GET", "/async/", {})] * 30)
    assert {r.status_code for r in responses} == {200}
    assert counter("dropped_redis_down") - dropped_before == 30
    assert buffer.pending_count() == 0
    private_redis.start()
    asgi_requests([("GET", "/async/", {})] * 4)
    assert flush() == 4


@override_settings(
    PAGEVIEW_LOCAL_QUEUE_SIZE=5, PAGEVIEW_SHIP_INTERVAL=30, PAGEVIEW_THROTTLE_SECONDS=0
)
def test_local_queue_overflow_spills(private_redis: PrivateRedis) -> None:
    # All 12 requests are handled before the batcher's first shipment: 7 overflow.
    before = counter("spilled_overflow")
    asgi_requests([("GET", "/async/", {})] * 12)
    assert counter("spilled_overflow") - before == 7
    assert flush() == 12
    assert stored_views() == 12


def test_reads_fall_back_to_the_database_while_redis_is_down(
    private_redis: PrivateRedis,
) -> None:
    asgi_requests([("GET", "/async/", {})])
    assert flush() == 1
    private_redis.stop()
    before = counter(stats.READ_ERROR)
    from django_pageviews.models import PageView

    assert PageView.get_view_count(url="/async/") == 1
    assert counter(stats.READ_ERROR) - before == 1


# The test ships, not the batcher's own timer: a shipment by the thread, refused before
# the test's, opens the breaker, and the test's would then spill the view at once.
@override_settings(PAGEVIEW_THROTTLE_SECONDS=0, PAGEVIEW_SHIP_INTERVAL=30)
def test_a_shipper_left_retrying_reads_no_salt(private_redis: PrivateRedis) -> None:
    """A shipment waiting for Redis has its views hashed already: retrying it needs no
    salt, so a shipper thread left retrying (every 50 ms while Redis is down) must not
    read or create salts in the database."""
    private_redis.stop()
    assert wsgi_get("/plain/").status_code == 200
    batcher.ship_all()  # Redis refuses: the shipment waits in the retry slot
    assert batcher.retry is not None
    VisitorSalt.objects.all().delete()
    salts.forget_memory()
    batcher.ship_all()  # the retry (spilled to this process's buffer once the breaker opens)
    assert not VisitorSalt.objects.exists()
    private_redis.start()
    wait_for(batcher.breaker.allows, "the thread batcher's breaker to let shipments through")
    batcher.ship_all()
    assert batcher.retry is None
    assert flush() == 1
    assert stored_views() == 1
