"""The benchmark server's ASGI application: the tests' project on bench.settings, with the
package's lifespan wrapper so that uvicorn's shutdown flushes what is buffered."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from django_pageviews.aio.lifespan import PageViewsLifespan

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

application = PageViewsLifespan(get_asgi_application())
