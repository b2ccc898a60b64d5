from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from django_pageviews.aio.lifespan import PageViewsLifespan

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

application = PageViewsLifespan(get_asgi_application())
