"""A plain asgi.py, as a site keeps it from 0.2.x: no lifespan wrapper at all."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

application = get_asgi_application()
