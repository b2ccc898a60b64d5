"""ASGI entry point: Django's handler, wrapped so that shutdown flushes buffered views."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_asgi.settings")

from django_pageviews.aio.lifespan import PageViewsLifespan  # noqa: E402

application = PageViewsLifespan(get_asgi_application())
