from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class BlogConfig(AppConfig):
    name = "example_asgi.blog"
    label = "blog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .checks import pipeline_drains

        checks.register(pipeline_drains)
