"""The app's configuration: checks, the ASGI lifespan and the exit hook, set up in ``ready()``."""

from __future__ import annotations

import atexit
import importlib.util

from django.apps import AppConfig
from django.core import checks


class PageViewsConfig(AppConfig):
    name = "django_pageviews"
    verbose_name = "Page views"
    # Fixed here so that a project's DEFAULT_AUTO_FIELD never creates a migration in our app.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.contenttypes.models import ContentType
        from django.db.models.signals import pre_delete

        from . import checks as pageview_checks
        from .aio import handler
        from .content_types import delete_views_of
        from .metrics.figures import multiprocess_directory
        from .shutdown import flush_at_exit

        checks.register(pageview_checks.check_settings)
        checks.register(pageview_checks.check_async_dependencies)
        checks.register(pageview_checks.check_middleware_order)
        checks.register(pageview_checks.check_database_router)
        checks.register(pageview_checks.check_raw_partitions)
        # A content type's views go with it, on their own database (content_types.py).
        pre_delete.connect(delete_views_of, sender=ContentType, dispatch_uid=__name__)
        checks.register(pageview_checks.check_redis_reachable, deploy=True)
        # ASGI servers' graceful shutdown writes the buffered views through the lifespan
        # protocol, which Django's handler lacks: taught here, so a plain asgi.py is safe.
        handler.install()
        # Views still buffered when the interpreter exits (WSGI servers, daphne, manage.py
        # commands) are written by this hook.
        atexit.register(flush_at_exit)
        # prometheus_client's multiprocess mode: every process of the host keeps its
        # counts in the shared files, from its first count on (metrics/multiprocess.py).
        if multiprocess_directory() and importlib.util.find_spec("prometheus_client"):
            from .metrics import multiprocess

            multiprocess.install()
