"""The user's guide, followed as written: the demo's celery.py and settings, and the
worker and beat commands it gives, against real Redis and a real database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import redis

from django_pageviews.models import PageView
from django_pageviews.redis.buffer import Keys
from tests.conftest import BROWSER_UA
from tests.processes import DEMO_DATABASE, ROOT, celery, demo_env, manage, running, wait_for


def test_guide_workers_beat_and_queues(redis_url: str, tmp_path: Path) -> None:
    database = tmp_path / DEMO_DATABASE
    env = demo_env(tmp_path, redis_url)
    manage(env, "migrate", "--noinput")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    buffer_worker = celery("-A", "example_asgi", "worker", "-l", "info", "-Q", "pageviews-buffer")
    process_worker = celery("-A", "example_asgi", "worker", "-l", "info", "-Q", "pageviews-process")
    try:
        with (
            running(buffer_worker, env, tmp_path / "buffer-worker.log"),
            running(process_worker, env, tmp_path / "process-worker.log"),
        ):
            for i in range(3):
                kwargs = {"url": f"/articles/article-{i % 2 + 1}/", "user_agent": BROWSER_UA}
                subprocess.run(
                    celery(
                        "-A",
                        "example_asgi",
                        "call",
                        "django_pageviews.tasks.buffer_page_view",
                        "--kwargs",
                        json.dumps(kwargs),
                    ),
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                )
            # The pageviews-buffer worker shipped them to Redis ...
            wait_for(lambda: client.hget(Keys.current().dims, "t") == "3", "views in Redis")
            # ... and the pageviews-process worker drains them into the database.
            for task in ("process_pageview_buffer", "cleanup_old_buffer_data"):
                subprocess.run(
                    celery("-A", "example_asgi", "call", f"django_pageviews.tasks.{task}"),
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                )
            wait_for(lambda: _rows(database) == 3, "views in the database")
            # Beat, as the guide starts it, runs with the guide's schedule (its first
            # tick is a minute away, so its sending is tested with a short schedule in
            # test_end_to_end).
            beat = celery(
                "-A",
                "example_asgi",
                "beat",
                "-l",
                "info",
                "-s",
                str(tmp_path / "celerybeat-schedule"),
            )
            with running(beat, env, tmp_path / "beat.log") as process:
                wait_for(lambda: "beat: Starting..." in (tmp_path / "beat.log").read_text(), "beat")
                assert process.poll() is None
    finally:
        client.close()
    assert _rows(database, "/articles/article-1/") == 2
    assert client.hget(Keys.current().dims, "t") is None
    process_log = (tmp_path / "process-worker.log").read_text()
    assert "django_pageviews.tasks.process_pageview_buffer" in process_log
    assert "django_pageviews.tasks.cleanup_old_buffer_data" in process_log


def _rows(database: Path, url: str | None = None) -> int:
    table = PageView._meta.db_table
    with closing(sqlite3.connect(database)) as connection:
        if url is None:
            row = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        else:
            row = connection.execute(
                f"SELECT COUNT(*) FROM {table} WHERE url = ?", (url,)
            ).fetchone()
    return int(row[0])
