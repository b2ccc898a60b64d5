"""The benchmark server's ASGI application: the tests' project on bench.settings, with the
package's lifespan wrapper so that uvicorn's shutdown flushes what is buffered."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from django_pageviews.aio.lifespan import PageViewsLifespan

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import tests.celery_app  # noqa: E402, F401  (as a project's __init__ loads its Celery app)

application = PageViewsLifespan(get_asgi_application())
