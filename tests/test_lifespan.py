"""Shutdown writes what is buffered: Django's own handler answers the lifespan protocol
(taught by the app), the optional wrapper does the same, and a real uvicorn process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.aio import handler
from django_pageviews.aio.lifespan import ASGIApp, PageViewsLifespan
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from django_pageviews.shutdown import log_exit, shipped_so_far
from tests.conftest import BROWSER_UA, distinct_visitors
from tests.processes import DEMO_DATABASE, demo_env, free_port, manage, uvicorn, wait_until_serving
from tests.redis_server import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent

APPS: dict[str, Callable[[], ASGIApp]] = {
    "plain-handler": ASGIHandler,  # get_asgi_application() as a 0.2.x asgi.py has it
    "wrapper": lambda: PageViewsLifespan(ASGIHandler()),
}


async def views_then_lifespan(app: ASGIApp, visitors: int) -> list[dict[str, Any]]:
    """Serve ``visitors`` views, then run one lifespan (startup, shutdown) on this loop;
    the messages the app sent."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        responses = await asyncio.gather(
            *(c.get("/plain/", headers=h) for h in distinct_visitors(visitors))
        )
    assert [r.status_code for r in responses] == [200] * visitors
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


LIFESPAN_DONE = [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.parametrize("make_app", APPS.values(), ids=list(APPS))
@pytest.mark.django_db(transaction=True)
@override_settings(PAGEVIEW_MAX_BUFFER_AGE=3600)
def test_lifespan_shutdown_flushes_the_buffer(make_app: Callable[[], ASGIApp]) -> None:
    sent = asyncio.run(views_then_lifespan(make_app(), 7))
    assert sent == LIFESPAN_DONE
    assert PageView.objects.count() == 7
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back at shutdown


@pytest.mark.parametrize("make_app", APPS.values(), ids=list(APPS))
@pytest.mark.django_db(transaction=True)
def test_lifespan_shutdown_ships_the_loops_batcher_before_the_loop_closes(
    make_app: Callable[[], ASGIApp], private_redis: PrivateRedis
) -> None:
    """The shutdown itself ships the asyncio batcher's views to Redis: a server that
    never closes its loop (uvicorn re-raises SIGTERM first) must not lose them."""

    def drain() -> int:
        try:
            return flush()
        finally:
            connections.close_all()  # this worker thread's connection

    async def run() -> int:
        with override_settings(PAGEVIEW_SHIP_INTERVAL=3600):  # no shipment before shutdown
            assert await views_then_lifespan(make_app(), 5) == LIFESPAN_DONE
        return await asyncio.to_thread(drain)  # the loop is still running: drain Redis

    assert asyncio.run(run()) == 5
    assert PageView.objects.count() == 5


def test_the_handler_is_taught_lifespan_once() -> None:
    """ready() installed it; installing again wraps nothing twice."""
    assert handler.installed()
    patched = ASGIHandler.__call__
    handler.install()
    assert ASGIHandler.__call__ is patched
    assert not getattr(patched.__wrapped__, "_pageviews_lifespan", False)  # type: ignore[attr-defined]


def test_the_handler_still_refuses_other_scopes() -> None:
    async def receive() -> Any:
        raise AssertionError("not called")

    async def send(message: Any) -> None:
        raise AssertionError("not called")

    async def call() -> None:
        await ASGIHandler()({"type": "websocket"}, receive, send)

    with pytest.raises(ValueError, match="Django can only handle ASGI/HTTP connections"):
        asyncio.run(call())


def test_demo_under_uvicorn_counts_visits_and_flushes_on_sigterm(tmp_path: Path) -> None:
    """The demo blog served by a real uvicorn: counts shown rise with each new visitor,
    not with a reload; SIGTERM writes what was still buffered."""
    db = tmp_path / DEMO_DATABASE
    env = demo_env(tmp_path)
    # Nothing is written before shutdown: the package's PAGEVIEW_MAX_BUFFER_AGE (1 s) and
    # the demo's PAGEVIEW_BUFFER_TIMEOUT (5 s) would flush a test slowed down by a loaded
    # machine (CI wrote 2 of the 3 views before shutdown once: the demo settings did not
    # read the age from the environment).
    env["PAGEVIEW_MAX_BUFFER_AGE"] = "3600"
    env["PAGEVIEW_BUFFER_TIMEOUT"] = "3600"
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo", "--count", "2")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        uvicorn("example_asgi.asgi:application", port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(base + "/", process)

        def shown(headers: dict[str, str]) -> str:
            html = httpx.get(base + "/articles/article-1/", headers=headers).text
            return html.split('<span id="views">')[1].split("<")[0]

        first, second = distinct_visitors(2)
        assert shown(first) == "0"
        assert shown(second) == "1"  # a new visitor sees the previous visit counted
        assert shown(first) == "2"
        assert shown(first) == "2"  # a reload within the throttle window is not counted
        listing = httpx.get(base + "/", headers={"user-agent": BROWSER_UA}).text
        assert 'data-views="2"' in listing and 'data-views="0"' in listing
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    # uvicorn re-raises the signal once its graceful shutdown is complete.
    assert process.returncode in (0, -signal.SIGTERM), output
    # Views: the listing and two article visits (the readiness probe is a bot).
    assert "Wrote 3 buffered page views at shutdown" in output, output
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute(
            f"SELECT url, COUNT(*) FROM {PageView._meta.db_table} GROUP BY url ORDER BY url"
        ).fetchall()
    assert rows == [("/", 1), ("/articles/article-1/", 2)]


def test_the_exit_log_says_shipped_and_written_apart(
    caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    """In async mode a view shipped to Redis is not written yet: the log says which is
    which (it said "Wrote 0 buffered page views" after shipping one)."""
    caplog.set_level(logging.INFO, logger="django_pageviews.shutdown")
    settings.PAGEVIEW_ASYNC_PROCESSING = True
    before = shipped_so_far()
    stats.incr(stats.SHIPPED, 2)
    log_exit("at exit", before, 3)
    log_exit("at exit", before + 2, 0)  # nothing shipped or written: nothing said
    settings.PAGEVIEW_ASYNC_PROCESSING = False
    log_exit("at shutdown", 0, 0)
    log_exit("at shutdown", 0, 0, always=True)
    assert caplog.messages == [
        f"Shipped 2 page views to Redis at exit ({before + 2} since this process started); "
        "a Celery worker writes them to the database.",
        "Wrote 3 page views that Redis did not take to the database at exit.",
        "Wrote 0 buffered page views at shutdown.",
    ]
