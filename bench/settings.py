"""Settings of the benchmark server and drains: the tests' project, reconfigured by the
environment.

BENCH_TRACKING       off | inprocess | redis (default inprocess), or a baseline that does
                     what 0.2.6 did (bench/baseline.py): sync-insert | celery-message | redis-list
BENCH_STACK          project: the tests' middleware (sessions, common, auth, messages)
                     before ours (default); bare: PageViewMiddleware alone, or nothing
BENCH_DATABASE_URL   the database (default: a SQLite file in the temporary directory)
BENCH_REDIS_URL      the Redis database of the buffer (default: a private redis-server)
PAGEVIEW_<NAME>      any package setting, as JSON (e.g. PAGEVIEW_BATCH_SIZE=1000); wins
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from bench.common import redis_url
from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE as TESTS_MIDDLEWARE

PAGEVIEW_MIDDLEWARE = "django_pageviews.middleware.PageViewMiddleware"
TRACKING_MODES = ("off", "inprocess", "redis", "sync-insert", "celery-message", "redis-list")
BASELINES = {
    "sync-insert": "bench.baseline.SyncInsertMiddleware",
    "celery-message": "bench.baseline.CeleryMessageMiddleware",
    "redis-list": "bench.baseline.RedisListMiddleware",
}
STACKS = ("project", "bare")

TRACKING = os.environ.get("BENCH_TRACKING", "inprocess")
if TRACKING not in TRACKING_MODES:
    raise ImproperlyConfigured(f"BENCH_TRACKING must be one of {TRACKING_MODES}, not {TRACKING!r}")
STACK = os.environ.get("BENCH_STACK", "project")
if STACK not in STACKS:
    raise ImproperlyConfigured(f"BENCH_STACK must be one of {STACKS}, not {STACK!r}")

SECRET_KEY = "bench-only-not-secret"
DEBUG = False

_default_db = Path(tempfile.gettempdir()) / "django-pageviews-bench.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{_default_db}")
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The writer thread and the server's threads share the file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}

MIDDLEWARE = [
    BASELINES.get(TRACKING, m) if m == PAGEVIEW_MIDDLEWARE else m
    for m in TESTS_MIDDLEWARE
    if (m == PAGEVIEW_MIDDLEWARE and TRACKING != "off")
    or (m != PAGEVIEW_MIDDLEWARE and STACK == "project")
]
if TRACKING in BASELINES and STACK != "project":
    raise ImproperlyConfigured("the 0.2.6 baselines throttle through the session: project stack")
if STACK == "bare":  # the admin app stays installed (tests.urls routes it) but is not used
    SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

PAGEVIEW_THROTTLE_SECONDS = 0  # every request is a view (throughput.py sets the default)
# No Celery worker drains in most scenarios: the drain is run (and timed) separately.
PAGEVIEW_EARLY_FLUSH_THRESHOLD = 0
PAGEVIEW_ASYNC_PROCESSING = TRACKING in ("redis", "celery-message")
PAGEVIEW_REDIS_URL = redis_url()  # BENCH_REDIS_URL, else a private redis-server
# The load tool sends X-Forwarded-For from thousands of addresses, as a proxy would.
PAGEVIEW_TRUSTED_PROXIES = ["127.0.0.1/32"]
# Celery (a worker drains, or takes the baseline's messages) on the next database of the
# same private server.
_redis = urlsplit(PAGEVIEW_REDIS_URL)
_broker_db = int(_redis.path.strip("/") or 0) + 1
CELERY_BROKER_URL = urlunsplit(_redis._replace(path=f"/{_broker_db}"))
CELERY_TASK_IGNORE_RESULT = True

for _name, _value in os.environ.items():
    if _name.startswith("PAGEVIEW_"):
        globals()[_name] = json.loads(_value)
