"""The demo as its README tells a user to run it: the mode recorded for later commands,
what it says it runs, what it says at shutdown in Redis mode, and the warning when no
Celery worker or beat drains the views."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from django_pageviews.pipeline_health import STALL_FACTOR, drain_interval
from django_pageviews.redis.buffer import Keys
from tests.conftest import BROWSER_UA
from tests.processes import (
    DEMO_DATABASE,
    ROOT,
    demo_env,
    free_port,
    manage,
    running,
    uvicorn,
    wait_for,
    wait_until_serving,
)


def record_mode(env: dict[str, str]) -> None:
    """What scripts/demo.sh runs first."""
    subprocess.run(
        [sys.executable, "-m", "example_asgi.mode"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def without_mode(env: dict[str, str]) -> dict[str, str]:
    """``env`` as a new terminal has it: DATABASE_URL and REDIS_URL not exported."""
    return {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}


def test_in_process_mode_is_recorded_and_said(tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    record_mode(env)
    info = manage(without_mode(env), "demo_info")
    assert f"Database: sqlite ({tmp_path / DEMO_DATABASE})." in info
    assert "Pipeline: in-process." in info
    assert "log in as admin / admin" in info
    assert "celery -A" not in info
    # An environment variable wins over the file.
    other = tmp_path / "other.sqlite3"
    info = manage({**without_mode(env), "DATABASE_URL": f"sqlite:///{other}"}, "demo_info")
    assert f"Database: sqlite ({other})." in info


def test_redis_mode_commands_shutdown_message_and_stall_warning(
    redis_url: str, tmp_path: Path
) -> None:
    env = demo_env(tmp_path, redis_url)
    record_mode(env)
    later = without_mode(env)  # every command below reads the mode from the file
    manage(later, "migrate", "--noinput")
    manage(later, "seed_demo", "--count", "1")
    info = manage(later, "demo_info")
    assert f"Pipeline: Redis ({redis_url}) and Celery." in info
    assert "celery -A example_asgi worker -l info -Q pageviews-buffer,pageviews-process" in info
    assert "celery -A example_asgi beat" in info
    assert "Warning" not in info  # nothing waits: nothing to judge by

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "uvicorn.log"
        with running(uvicorn("example_asgi.asgi:application", port), later, log) as server:
            wait_until_serving(base + "/", server)
            page = httpx.get(base + "/articles/article-1/", headers={"user-agent": BROWSER_UA})
            assert page.status_code == 200
            wait_for(lambda: client.hget(Keys.current().dims, "t") == "1", "the view in Redis")
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        output = log.read_text()
        # Shipped while serving, none left at shutdown; nothing written by this process.
        assert (
            "Shipped 0 page views to Redis at shutdown (1 since this process started); a "
            "Celery worker writes them to the database." in output
        ), output
        assert "Wrote" not in output
        assert manage(later, "check").count("demo.W001") == 0  # waited less than the bound

        # The view has now waited longer than the bound (its timestamp set back, instead of
        # sleeping two drain intervals): no worker or beat drains it.
        waited = STALL_FACTOR * drain_interval() + 60
        client.set(Keys.current().oldest, time.time() - waited)
        checked = manage(later, "check")
        assert "(demo.W001) 1 page views have waited" in checked, checked
        assert "no Celery worker or no beat is draining them" in checked
        assert "Warning: 1 page views have waited" in manage(later, "demo_info")
        status = manage(later, "pageviews_status")  # the package's command warns too
        assert "(demo.W001) 1 page views have waited" in status
        assert "pending_views: 1" in status
    finally:
        client.close()
    assert re.search(r"1 page views have waited \d+ s in Redis", checked)
