"""Settings for the test suite. DATABASE_URL selects the database (SQLite by default)."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR.parent / '.test-db.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads (requests, the writer) share the database: a file, not memory; one
    # per test run, so that runs side by side never share it.
    _test_db = Path(tempfile.gettempdir()) / f"pageviews-test-{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
elif DATABASES["default"]["ENGINE"].endswith("mysql"):
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

# A second database, for the tests of PAGEVIEW_DATABASE (test_routers.py): created only
# for the tests that ask for it. Next to the default one: a file of its own on SQLite, a
# database of its own on the same server elsewhere. TESTS_PAGEVIEW_DATABASE_URL: another.
PAGEVIEWS_ALIAS = "pageviews"
if os.environ.get("TESTS_PAGEVIEW_DATABASE_URL"):
    DATABASES[PAGEVIEWS_ALIAS] = dj_database_url.parse(os.environ["TESTS_PAGEVIEW_DATABASE_URL"])
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES[PAGEVIEWS_ALIAS] = {
        **copy.deepcopy(DATABASES["default"]),
        "NAME": str(BASE_DIR.parent / ".test-db-pageviews.sqlite3"),
        "TEST": {"NAME": str(_test_db.with_name(f"{_test_db.stem}-pageviews.sqlite3"))},
    }
else:
    DATABASES[PAGEVIEWS_ALIAS] = {
        **copy.deepcopy(DATABASES["default"]),
        "NAME": f"{DATABASES['default']['NAME']}_pageviews",
        "TEST": {**DATABASES["default"].get("TEST", {})},
    }
# Listed by the tests that set PAGEVIEW_DATABASE (override_settings), and here for a
# subprocess started with it: with any router listed, makemigrations checks the history of
# every database, which the other tests may not touch.
if os.environ.get("PAGEVIEW_DATABASE"):
    DATABASE_ROUTERS = ["django_pageviews.routers.PageViewRouter"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_pageviews",
    "tests",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_pageviews.middleware.PageViewMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# Subprocesses started by the tests (uvicorn, Celery, flushers) are configured through the
# environment: TESTS_REDIS_URL switches on the Redis path, PAGEVIEW_<NAME>=<JSON> sets a setting.
REDIS_URL = os.environ.get("TESTS_REDIS_URL", "")
# Without it, nothing may reach the Redis that PAGEVIEW_REDIS_URL's default falls back to
# (localhost:6379/0, a developer's own site): the fallback goes through CELERY_BROKER_URL,
# which names a socket that cannot exist (/dev/null is no directory). PAGEVIEW_REDIS_URL
# itself keeps its default, which the tests of conf check.
NO_REDIS_URL = "unix:///dev/null/no-redis-outside-the-tests-own.sock"
CELERY_BROKER_URL = REDIS_URL or NO_REDIS_URL
if REDIS_URL:
    PAGEVIEW_ASYNC_PROCESSING = True
    PAGEVIEW_REDIS_URL = REDIS_URL
for _name, _value in os.environ.items():
    if _name.startswith("PAGEVIEW_"):
        globals()[_name] = json.loads(_value)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"]},
}
