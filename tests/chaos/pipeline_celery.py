"""The chaos tests' Celery app: the tests' app (tests.celery_app, with its short beat
schedule), on a broker of its own when CHAOS_BROKER_URL names one.

A separate broker matters when the buffer's Redis is full: with the broker on the same
server under ``noeviction``, beat could not even send the task that frees the memory.
"""

from __future__ import annotations

import os

from tests.celery_app import app

if os.environ.get("CHAOS_BROKER_URL"):
    app.conf.broker_url = os.environ["CHAOS_BROKER_URL"]


if os.environ.get("CHAOS_SQLITE_TIMEOUT"):
    # Before any connection exists: the worker's SQLite busy timeout (faults_db).
    from django.conf import settings

    _database = settings.DATABASES["default"]
    if _database["ENGINE"].endswith("sqlite3"):
        _database.setdefault("OPTIONS", {})["timeout"] = float(os.environ["CHAOS_SQLITE_TIMEOUT"])

__all__ = ["app"]
