"""The metrics through real requests on both pipelines: the Prometheus exposition, parsed
as Prometheus parses it, with exact counts; ``pageviews_status --json`` and
``--prometheus``; stores that do not answer."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.metrics.collector import PageViewsCollector, exposition
from django_pageviews.metrics.figures import DIRECTORY_VARIABLE, SCHEMA, THIS_PROCESS
from django_pageviews.metrics.names import VIEW_OUTCOMES
from django_pageviews.recorder import flush
from django_pageviews.redis.buffer import Keys
from tests.conftest import CRAWLER_UA, asgi_get, asgi_requests, distinct_visitors
from tests.metrics_scrape import Samples, command_scrape, delta, help_texts, parse, value
from tests.processes import subprocess_env
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)


def scrape() -> Samples:
    return parse(exposition(PageViewsCollector()).decode())


def status_json() -> dict[str, Any]:
    out = StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


# The in-process writer would write the views after a second: held, so that they are
# seen buffered first.
@override_settings(PAGEVIEW_MAX_BUFFER_AGE=300)
def test_counts_through_real_requests_then_written(pipeline: str) -> None:
    before = scrape()
    asgi_requests(
        [
            *(("GET", "/plain/", h) for h in distinct_visitors(3)),
            ("GET", "/plain/", {"user-agent": CRAWLER_UA}),
            ("POST", "/form/", {}),
            ("GET", "/status/404/", {}),
        ]
    )
    asgi_get("/plain/", **distinct_visitors(1)[0])  # a reload: throttled in this process
    pending = scrape()
    assert delta(before, pending, "pageviews_views_total", outcome="recorded") == 3
    for reason in (stats.SKIP_BOT, stats.SKIP_METHOD, stats.SKIP_STATUS, stats.SKIP_THROTTLED):
        assert delta(before, pending, "pageviews_not_counted_total", reason=reason) == 1
    assert delta(before, pending, "pageviews_views_total", outcome="written") == 0
    assert delta(before, pending, "pageviews_errors_total", kind=stats.METRICS_ERROR) == 0
    assert value(pending, "pageviews_database_up") == 1
    if pipeline == "redis":
        assert delta(before, pending, "pageviews_views_total", outcome="shipped") == 3
        assert value(pending, "pageviews_redis_up") == 1
        assert value(pending, "pageviews_redis_pending_views") == 3
        assert value(pending, "pageviews_buffered_views") == 0
        assert value(pending, "pageviews_redis_drained_views_total") == 0
        assert value(pending, "pageviews_redis_last_drain_age_seconds") is None  # never
        lag = value(pending, "pageviews_redis_oldest_pending_age_seconds")
    else:
        assert value(pending, "pageviews_redis_up") is None  # no Redis on this path
        assert value(pending, "pageviews_buffered_views") == 3
        lag = value(pending, "pageviews_buffer_oldest_age_seconds")
    assert lag is not None and 0 <= lag < 60
    assert value(pending, "pageviews_drain_lag_seconds") == pytest.approx(lag, abs=0.5)
    assert value(pending, "pageviews_last_batch_age_seconds") is None  # nothing written yet

    assert flush() == 3
    written = scrape()
    assert delta(pending, written, "pageviews_views_total", outcome="written") == 3
    assert delta(pending, written, "pageviews_views_total", outcome="recorded") == 0
    assert value(written, "pageviews_buffered_views") == 0
    assert value(written, "pageviews_drain_lag_seconds") == 0
    last_batch = value(written, "pageviews_last_batch_age_seconds")
    assert last_batch is not None and 0 <= last_batch < 60
    if pipeline == "redis":
        assert value(written, "pageviews_redis_pending_views") == 0
        assert value(written, "pageviews_redis_drained_views_total") == 3
        assert value(written, "pageviews_redis_oldest_pending_age_seconds") is None
        drained_ago = value(written, "pageviews_redis_last_drain_age_seconds")
        assert drained_ago is not None and 0 <= drained_ago < 60


def test_every_process_counter_is_exported_with_help() -> None:
    """Every name the package counts with is in a family, under its label (those no
    group names under pageviews_events_total), and every family says what it is."""
    asgi_get("/plain/", **{"user-agent": CRAWLER_UA})
    counts = stats.snapshot()
    text = exposition(PageViewsCollector()).decode()
    samples = parse(text)
    outcome_of = {name: outcome for outcome, name in VIEW_OUTCOMES.items()}
    for name, count in counts.items():
        label = outcome_of.get(name, name)
        found = {
            v
            for (_, labels), v in samples.items()
            if label in dict(labels).values() or "_".join(dict(labels).values()) == name
        }
        assert count in found, name
    helps = help_texts(text)
    assert all(helps.values()), helps
    assert all(family.startswith("pageviews_") for family in helps)


@override_settings(PAGEVIEW_MAX_BUFFER_AGE=300)
def test_status_json_reports_the_metrics(pipeline: str) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(2)])
    report = status_json()["metrics"]
    assert report["schema"] == SCHEMA
    assert report["process_scope"] == THIS_PROCESS
    assert report["database"]["reachable"] is True
    if pipeline == "redis":
        assert report["redis"]["pending_views"] == 2
        assert report["redis"]["reachable"] is True
        assert report["buffer"]["buffered_views"] == 0
    else:
        assert report["redis"] is None
        assert report["buffer"]["buffered_views"] == 2
    flush()
    report = status_json()["metrics"]
    assert report["drain_lag_seconds"] == 0
    if pipeline == "redis":
        assert report["redis"]["drained_views"] == 2


def test_status_prometheus_prints_the_site_figures_only() -> None:
    """A command's own process counters are not the site's: left out without the
    multiprocess files (test_metrics_multiprocess.py has them with)."""
    out = StringIO()
    call_command("pageviews_status", "--prometheus", stdout=out)
    samples = parse(out.getvalue())
    assert value(samples, "pageviews_database_up") == 1
    assert value(samples, "pageviews_drain_lag_seconds") == 0
    assert not [name for name, _ in samples if name == "pageviews_views_total"]


def test_a_stopped_redis_leaves_its_figures_out_and_is_counted(
    private_redis: PrivateRedis,
) -> None:
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(2)])
    assert value(scrape(), "pageviews_redis_pending_views") == 2
    private_redis.stop()
    before = stats.snapshot().get(stats.METRICS_ERROR, 0)
    samples = scrape()
    assert stats.snapshot().get(stats.METRICS_ERROR, 0) - before == 1
    assert value(samples, "pageviews_errors_total", kind=stats.METRICS_ERROR) == before + 1
    assert value(samples, "pageviews_redis_up") == 0
    assert value(samples, "pageviews_redis_pending_views") is None
    assert value(samples, "pageviews_drain_lag_seconds") is None  # unknown, not 0
    assert value(samples, "pageviews_database_up") == 1
    assert value(samples, "pageviews_views_total", outcome="recorded") is not None
    out = StringIO()
    call_command("pageviews_status", "--prometheus", stdout=out)  # exits 0 too
    assert value(parse(out.getvalue()), "pageviews_redis_up") == 0


@override_settings(PAGEVIEW_REDIS_SOCKET_TIMEOUT=0.2)
def test_a_redis_that_stops_answering_mid_scrape_is_counted(
    private_redis: PrivateRedis,
) -> None:
    """Connected, then no answer: CLIENT PAUSE holds every command for two seconds, the
    way a Redis stalled by a fork or a slow disk does; the scrape waits only the socket
    timeout."""
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(1)])
    assert value(scrape(), "pageviews_redis_pending_views") == 1
    pauser: Any = redis.Redis.from_url(private_redis.url)  # execute_command is untyped
    try:
        before = stats.snapshot().get(stats.METRICS_ERROR, 0)
        pauser.execute_command("CLIENT", "PAUSE", 2000, "ALL")
        samples = scrape()
        assert stats.snapshot().get(stats.METRICS_ERROR, 0) - before == 1
        assert value(samples, "pageviews_redis_up") == 0
        assert value(samples, "pageviews_database_up") == 1
    finally:
        pauser.execute_command("CLIENT", "UNPAUSE")
        pauser.close()
    assert value(scrape(), "pageviews_redis_pending_views") == 1


def test_a_database_that_cannot_be_opened_leaves_its_figures_out(tmp_path: Path) -> None:
    """A command of the host, with the multiprocess files (so that its own counters are
    printed) and a database that cannot be opened: it still prints, and counts why."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = subprocess_env("", **{DIRECTORY_VARIABLE: str(shared)})
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'no-such-directory' / 'db.sqlite3'}"
    samples = command_scrape(env)
    assert value(samples, "pageviews_database_up") == 0
    assert value(samples, "pageviews_last_batch_age_seconds") is None
    assert value(samples, "pageviews_errors_total", kind=stats.METRICS_ERROR) == 1
    assert value(samples, "pageviews_drain_lag_seconds") == 0  # nothing buffered here


def test_a_scrape_runs_no_script_however_long_the_backlog(redis_url: str) -> None:
    """A scrape reads the buffer in one round trip: no script walks the raw events (as
    ``pageviews_status`` does to count them), so a backlog costs Redis nothing more."""
    asgi_requests([("GET", "/plain/", h) for h in distinct_visitors(3)])
    client: Any = redis.Redis.from_url(redis_url)
    try:
        assert client.llen(Keys.current().events) > 0  # raw events wait (STORE_RAW)
        client.config_resetstat()
        assert value(scrape(), "pageviews_redis_pending_views") == 3
        commands = client.info("commandstats")
    finally:
        client.close()
    assert not [name for name in commands if "eval" in name or "fcall" in name], commands
