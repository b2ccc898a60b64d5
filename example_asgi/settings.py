"""Demo settings: SQLite and the in-process buffer unless the environment says otherwise.

DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/demo) switches the database;
REDIS_URL (e.g. redis://127.0.0.1:6379/0) switches on the Redis + Celery pipeline.

``scripts/demo.sh`` records the two in ``.demo/mode.env`` (``DEMO_DIR``), and a variable
missing from the environment is read from there: ``python manage.py pageviews_status``, a
Celery worker or beat then run in the same mode as the demo without exporting anything.
A variable set in the environment (even to '') wins over the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from example_asgi.mode import demo_setting

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_pageviews",
    "example_asgi.blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_pageviews.middleware.PageViewMiddleware",
]

ROOT_URLCONF = "example_asgi.urls"
ASGI_APPLICATION = "example_asgi.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        demo_setting("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'demo.sqlite3'}",
        conn_max_age=60,
    )
}

USE_TZ = True
TIME_ZONE = "UTC"
# Served by Django's ASGIStaticFilesHandler in asgi.py (see there why not WhiteNoise).
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = demo_setting("REDIS_URL")

# Celery Settings
CELERY_BROKER_URL = REDIS_URL or "redis://localhost:6379/0"
CELERY_RESULT_BACKEND = REDIS_URL or "redis://localhost:6379/0"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"

# Separate queues for page view processing, as the guide's performance section; the
# cleanup task is routed too, or only a worker on Celery's default queue would run it.
CELERY_TASK_ROUTES = {
    "django_pageviews.tasks.buffer_page_view": {"queue": "pageviews-buffer"},
    "django_pageviews.tasks.process_pageview_buffer": {"queue": "pageviews-process"},
    "django_pageviews.tasks.cleanup_old_buffer_data": {"queue": "pageviews-process"},
}

# Django PageViews Async Settings
PAGEVIEW_ASYNC_PROCESSING = bool(REDIS_URL)
PAGEVIEW_BATCH_SIZE = 100  # Number of views to process in one batch
PAGEVIEW_BUFFER_TIMEOUT = float(os.environ.get("PAGEVIEW_BUFFER_TIMEOUT", 5))
if "PAGEVIEW_MAX_BUFFER_AGE" in os.environ:  # the package's default (1 s) otherwise
    PAGEVIEW_MAX_BUFFER_AGE = float(os.environ["PAGEVIEW_MAX_BUFFER_AGE"])
# The articles show their public counter badge ({% pageview_counter article %}).
PAGEVIEW_PUBLIC_COUNTERS = ["blog.article"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_pageviews": {"handlers": ["console"], "level": "INFO"}},
}
