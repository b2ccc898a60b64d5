"""prometheus_client's multiprocess mode: two uvicorn processes share one
``PROMETHEUS_MULTIPROC_DIR``; a scrape of either gives both processes' counts, summed,
and a process that has exited still counts (a counter never goes down)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from django_pageviews import stats
from django_pageviews.metrics.figures import DIRECTORY_VARIABLE
from django_pageviews.models import PageView
from tests.conftest import BROWSER_UA
from tests.metrics_scrape import Samples, command_scrape, parse, value
from tests.processes import (
    BIN,
    free_port,
    running,
    subprocess_env,
    uvicorn,
    wait_until_serving,
)

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(base: str) -> Samples:
    response = httpx.get(base + "/metrics/", headers={"user-agent": "Prometheus/3.0"})
    assert response.status_code == 200
    return parse(response.text)


def scraped_env(directory: Path) -> dict[str, str]:
    """A server process on the in-process path (nothing but the files is shared), its
    views buffered until it stops, scraped from 127.0.0.1, counting into ``directory``."""
    return subprocess_env(
        "",
        PAGEVIEW_METRICS_ALLOWED_IPS=json.dumps(["127.0.0.1"]),
        PAGEVIEW_MAX_BUFFER_AGE="300",
        **{DIRECTORY_VARIABLE: str(directory)},
    )


def test_two_processes_counts_are_summed(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = scraped_env(shared)
    ports = [free_port(), free_port()]
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    with running(uvicorn("tests.asgi:application", ports[0]), env, tmp_path / "a.log") as one:
        with running(uvicorn("tests.asgi:application", ports[1]), env, tmp_path / "b.log") as two:
            wait_until_serving(a + "/plain/", one)  # each: one bot request
            wait_until_serving(b + "/plain/", two)
            for base, n in ((a, 2), (b, 3)):
                for i in range(n):
                    headers = {"user-agent": f"{BROWSER_UA} {base} {i}"}
                    assert httpx.get(base + "/plain/", headers=headers).status_code == 200
            samples = scrape(a)
            assert value(samples, "pageviews_views_total", outcome="recorded") == 5
            assert value(samples, "pageviews_not_counted_total", reason=stats.SKIP_BOT) == 2
            assert value(scrape(b), "pageviews_views_total", outcome="recorded") == 5
        # b has exited (and written its views at shutdown): its counts stay in the sum.
        samples = scrape(a)
        assert value(samples, "pageviews_views_total", outcome="recorded") == 5
        assert value(samples, "pageviews_views_total", outcome="written") == 3
    # A command of the host reads the same files: the process counters are the site's.
    samples = command_scrape(env)
    assert value(samples, "pageviews_views_total", outcome="recorded") == 5
    assert value(samples, "pageviews_views_total", outcome="written") == 5


def test_gunicorn_preload_workers_counts_are_summed_exactly(tmp_path: Path) -> None:
    """gunicorn --preload: the app (and the copy of counts to the files) is set up in the
    master, then forked. Each worker's counts land in a file of its own pid, once, and
    every scrape, whichever worker answers it, gives the exact sum."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = scraped_env(shared)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        str(BIN / "gunicorn"),
        "--preload",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "django.core.wsgi:get_wsgi_application()",
    ]
    with running(args, env, tmp_path / "gunicorn.log") as server:
        wait_until_serving(base + "/plain/", server)  # one bot request
        for i in range(8):
            headers = {"user-agent": f"{BROWSER_UA} {i}", "connection": "close"}
            assert httpx.get(base + "/plain/", headers=headers).status_code == 200
        pids = {p.name for p in shared.glob("counter_*.db")}
        assert len(pids) >= 1
        for _ in range(4):  # either worker answers
            samples = scrape(base)
            assert value(samples, "pageviews_views_total", outcome="recorded") == 8
            assert value(samples, "pageviews_not_counted_total", reason=stats.SKIP_BOT) == 1


def test_a_missing_directory_never_breaks_a_request(tmp_path: Path) -> None:
    """``PROMETHEUS_MULTIPROC_DIR`` names a directory that is not there (a volume not
    mounted): prometheus_client cannot open its file at the first count; the request is
    served, the view counted and written (the failure is logged); a scrape reports the
    process's own counters and counts the failure."""
    env = scraped_env(tmp_path / "not-mounted")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(uvicorn("tests.asgi:application", port), env, tmp_path / "s.log") as server:
        wait_until_serving(base + "/plain/", server)
        for i in range(3):
            headers = {"user-agent": f"{BROWSER_UA} {i}"}
            assert httpx.get(base + "/plain/", headers=headers).status_code == 200
        samples = scrape(base)
        assert value(samples, "pageviews_views_total", outcome="recorded") == 3
        assert value(samples, "pageviews_errors_total", kind=stats.METRICS_ERROR) == 1
    assert PageView.objects.count() == 3  # written at shutdown
