"""Shutdown writes what is buffered: the lifespan wrapper, and a real uvicorn process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler

from django_pageviews.aio.lifespan import PageViewsLifespan
from django_pageviews.models import PageView
from tests.conftest import BROWSER_UA, distinct_visitors
from tests.processes import free_port, uvicorn, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
def test_lifespan_shutdown_flushes_the_buffer() -> None:
    app = PageViewsLifespan(ASGIHandler())
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await asyncio.gather(*(c.get("/plain/", headers=h) for h in distinct_visitors(7)))
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert PageView.objects.count() == 7


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def test_demo_under_uvicorn_counts_visits_and_flushes_on_sigterm(tmp_path: Path) -> None:
    """The demo blog served by a real uvicorn: counts shown rise with each new visitor,
    not with a reload; SIGTERM writes what was still buffered."""
    db = tmp_path / "demo.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "DJANGO_SETTINGS_MODULE": "example_asgi.settings",
        "PAGEVIEW_BUFFER_TIMEOUT": "3600",  # nothing is written before shutdown
    }
    env.pop("REDIS_URL", None)
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
    assert "Wrote 3 buffered page views at shutdown" in output
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            f"SELECT url, COUNT(*) FROM {PageView._meta.db_table} GROUP BY url ORDER BY url"
        ).fetchall()
    assert rows == [("/", 1), ("/articles/article-1/", 2)]
