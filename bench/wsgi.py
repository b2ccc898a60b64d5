"""The benchmark's WSGI application (gunicorn's sync table): the tests' project on
bench.settings."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import tests.celery_app  # noqa: E402, F401  (as a project's __init__ loads its Celery app)

application = get_wsgi_application()
