"""What the demo tells its user about its pipeline: which one runs, what else it needs,
and whether views are being drained (demo.sh, ``demo_info`` and the demo's system check).

Whether a Celery worker and beat run is judged as the dashboard judges it
(``pipeline_health.draining``): by how long the oldest pending view has waited in Redis.
Nothing pending, nothing to judge by: no warning then.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from django_pageviews.conf import conf
from django_pageviews.pipeline_health import draining
from django_pageviews.redis.buffer import status
from django_pageviews.redis.client import get_client
from example_asgi.mode import ROOT, demo_dir, mode_file

WORKER_COMMAND = "celery -A example_asgi worker -l info -Q pageviews-buffer,pageviews-process"


def beat_command() -> str:
    """Beat's command, its schedule file kept with the demo's other state."""
    schedule = os.path.relpath(demo_dir() / "celerybeat-schedule", ROOT)
    return f"celery -A example_asgi beat -l info -s {schedule}"


def _safe_url(url: str) -> str:
    """``url`` without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def mode_lines() -> list[str]:
    """The database and pipeline this process runs with, and what the pipeline needs."""
    db = connection.settings_dict
    where = db["NAME"] if connection.vendor == "sqlite" else f"{db['HOST']}/{db['NAME']}"
    lines = [f"Database: {connection.vendor} ({where})."]
    if not conf.ASYNC_PROCESSING:
        lines.append(
            "Pipeline: in-process. Each process buffers its views and a writer thread "
            "writes them to the database in batches; no Redis, no Celery worker or beat."
        )
    else:
        lines += [
            f"Pipeline: Redis ({_safe_url(settings.REDIS_URL)}) and Celery. Views are "
            "shipped to Redis; they reach the database only when a Celery worker drains "
            "them, which beat schedules every minute. Run both, each in its own terminal "
            "from the repository root (they read the mode from the file below):",
            "  source .venv/bin/activate && " + WORKER_COMMAND,
            "  source .venv/bin/activate && " + beat_command(),
        ]
    lines.append(
        f"Mode recorded in {mode_file()}: manage.py and celery commands run in this mode "
        "without exporting anything (a variable set in the environment wins)."
    )
    return lines


def stall_warning() -> str | None:
    """Why views are not reaching the database (async mode), or None when all is well or
    nothing waits."""
    if not conf.ASYNC_PROCESSING:
        return None
    # Redis only, not pipeline_report(): the check runs before migrate creates the tables.
    client = get_client()
    try:
        redis = status(client)
    except Exception as exc:
        return f"Redis mode, but Redis does not answer ({exc}): views are not being counted."
    finally:
        client.close()
    state = draining({"async_processing": True, "redis": redis})
    if state["alive"] is not False:
        return None
    age = redis["oldest_pending_age_seconds"]
    return (
        f"{redis['pending_views']} page views have waited {age:.0f} s in Redis "
        f"(more than {state['stall_after_seconds']:.0f} s): no Celery worker or no beat is "
        "draining them."
    )
