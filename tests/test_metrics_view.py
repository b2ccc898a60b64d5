"""Who may scrape the metrics view: an allowed address (the connection's own, never a
forwarding header), a token of scope ``metrics`` or ``all``, permitted staff; the scrape
is not a page view, and a Redis that is down never makes it fail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from prometheus_client import CONTENT_TYPE_LATEST

from django_pageviews import stats
from django_pageviews.api.access import STATS_PERMISSION
from django_pageviews.api.tokens import mint
from django_pageviews.metrics.figures import DIRECTORY_VARIABLE, metrics_report
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests
from tests.metrics_scrape import parse, value
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)

METRICS = "/metrics/"


def staff_client(permitted: bool) -> Client:
    person = User.objects.create_user("ops", password="x", is_staff=True)
    if permitted:
        app_label, codename = STATS_PERMISSION.split(".")
        person.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(person)
    return client


def bearer(*scopes: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(scopes, timedelta(minutes=5))}"}


def test_anonymous_scrapers_get_401() -> None:
    response = Client().get(METRICS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="pageviews"'
    assert b"pageviews_" not in response.content


@pytest.mark.parametrize("scope", ["metrics", "all"])
def test_a_token_of_scope_metrics_or_all_scrapes(scope: str) -> None:
    response = Client().get(METRICS, headers=bearer(scope))
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    assert "no-cache" in response["Cache-Control"]
    assert value(parse(response.content.decode()), "pageviews_database_up") == 1


def test_a_token_of_another_scope_gets_403() -> None:
    assert Client().get(METRICS, headers=bearer("top")).status_code == 403


def test_staff_need_the_stats_permission() -> None:
    assert staff_client(permitted=False).get(METRICS).status_code == 403
    User.objects.all().delete()
    assert staff_client(permitted=True).get(METRICS).status_code == 200


@override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["10.0.0.0/8", "::1"])
def test_allowed_addresses_scrape_without_a_token() -> None:
    client = Client()
    assert client.get(METRICS, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="::1").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="192.168.1.1").status_code == 401
    assert client.get(METRICS, REMOTE_ADDR="not-an-address").status_code == 401
    # A forwarding header is anyone's to send: it opens nothing.
    forwarded = {"x-forwarded-for": "10.1.2.3"}
    assert client.get(METRICS, REMOTE_ADDR="192.168.1.1", headers=forwarded).status_code == 401


@override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["10.0.0.0/8"])
def test_an_ipv4_peer_of_a_dual_stack_server_is_matched_as_ipv4() -> None:
    # gunicorn or uvicorn bound to [::] give an IPv4 peer as an IPv4-mapped address.
    client = Client()
    assert client.get(METRICS, REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="::ffff:192.168.1.1").status_code == 401
    assert client.get(METRICS, REMOTE_ADDR="::ffff:a01:203").status_code == 200  # same peer
    with override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["::ffff:10.0.0.0/104"]):
        assert client.get(METRICS, REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200


@override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["127.0.0.1"])
def test_only_get_and_head() -> None:
    assert Client().post(METRICS).status_code == 405
    assert Client().head(METRICS).status_code == 200


@override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["127.0.0.1"])
def test_scrapes_are_not_page_views() -> None:
    before = stats.snapshot().get(stats.SKIP_EXCLUDED, 0)
    responses = asgi_requests([("GET", METRICS, {}), ("GET", METRICS, {})])
    assert {r.status_code for r in responses} == {200}
    flush()
    assert PageView.get_view_count() == 0
    assert stats.snapshot().get(stats.SKIP_EXCLUDED, 0) - before == 2  # the package's own


@override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["127.0.0.1"])
def test_a_stopped_redis_never_makes_the_view_fail(private_redis: PrivateRedis) -> None:
    private_redis.stop()
    response = Client().get(METRICS)
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert value(samples, "pageviews_redis_up") == 0
    assert value(samples, "pageviews_database_up") == 1


@pytest.mark.parametrize("broken", ["missing", "cut_short"])
@override_settings(PAGEVIEW_METRICS_ALLOWED_IPS=["127.0.0.1"])
def test_unreadable_multiprocess_files_never_make_the_scrape_fail(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"
    if broken == "cut_short":  # a disk that filled up while a worker wrote its file
        directory.mkdir()
        (directory / "counter_4242.db").write_bytes(b"\x00\x00\x01")
    monkeypatch.setenv(DIRECTORY_VARIABLE, str(directory))
    before = stats.snapshot().get(stats.METRICS_ERROR, 0)
    response = Client().get(METRICS)
    assert response.status_code == 200
    samples = parse(response.content.decode())
    # This process's counters, the failure among them.
    assert value(samples, "pageviews_errors_total", kind=stats.METRICS_ERROR) == before + 1
    assert value(samples, "pageviews_database_up") == 1
    report = metrics_report(str(directory))
    assert report["process_scope"] == "this_process"
    assert report["errors"][stats.METRICS_ERROR] == before + 2
