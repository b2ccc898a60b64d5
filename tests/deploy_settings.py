"""example_asgi's settings with django-celery-beat installed, which the DatabaseScheduler
drop-in (example_asgi/deploy/alternatives/beat-database-scheduler.conf) asks of a site."""

from __future__ import annotations

from example_asgi.settings import *  # noqa: F403
from example_asgi.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
