"""ASGI entry point: Django's handler, wrapped so that shutdown flushes buffered views and
the admin's static files are served.

Static files: Django's ``ASGIStaticFilesHandler`` (what ``runserver`` uses), which serves
``STATIC_URL`` from the apps' static directories with no ``collectstatic`` and passes
every other request to Django untouched. WhiteNoise would be the usual production choice,
but its middleware is sync-only: under ASGI Django would then run every request through a
thread hop (sync_to_async around it, async_to_sync back), and this demo exists to show
the async request path as it is. A real site serves static files from its web server, a
CDN or WhiteNoise after ``collectstatic``.
"""

from __future__ import annotations

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_asgi.settings")

from django_pageviews.aio.lifespan import PageViewsLifespan  # noqa: E402

application = PageViewsLifespan(ASGIStaticFilesHandler(get_asgi_application()))
