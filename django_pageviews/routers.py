"""``PageViewRouter``: every table of the app on the database ``PAGEVIEW_DATABASE`` names.

A busy site's page views are written all the time and read rarely: kept on a database of
their own, they neither share a connection pool, a WAL nor a backup schedule with the
site's data. Django moves an app to another database with a router (the site lists it in
``DATABASE_ROUTERS``), the way its documentation's ``AuthRouter`` moves ``auth``: the
package's own code picks its alias through ``django.db.router`` too (never
``default`` by name), so the router's answer is the only one.

Content types stay where the site keeps them: a row names one by its id, and Django
cannot join or enforce a foreign key across databases, so the app's foreign keys to
``ContentType`` carry no database constraint (migration 0006; docs/decisions.md).
Without ``PAGEVIEW_DATABASE`` the router answers nothing and the site's other routers
(or ``default``) decide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import router
from django.db.models import Model

from .conf import conf

APP_LABEL = "django_pageviews"
ROUTER_PATH = "django_pageviews.routers.PageViewRouter"


def _ours(model: type[Model] | Model) -> bool:
    return bool(model._meta.app_label == APP_LABEL)


class PageViewRouter:
    """Routes the app's models to ``PAGEVIEW_DATABASE``; has no opinion on any other."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return self._route(model, router.db_for_read, hints)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return self._route(model, router.db_for_write, hints)

    def _route(
        self, model: type[Model], ask: Callable[[type[Model]], str], hints: dict[str, Any]
    ) -> str | None:
        alias = conf.DATABASE
        if alias is None:
            return None
        if _ours(model):
            return alias
        instance = hints.get("instance")
        if instance is not None and _ours(instance):
            # A row's content type (``view.content_type``): Django would otherwise read it
            # from the row's own database. Asked again without the row: where the site
            # keeps that model.
            return ask(model)
        return None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # A row names a content type of another database by id (no constraint, above).
        if conf.DATABASE is not None and (_ours(obj1) or _ours(obj2)):
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if conf.DATABASE is None or app_label != APP_LABEL:
            return None
        return db == conf.DATABASE


def content_types_alongside(model: type[Model]) -> bool:
    """Whether ``model``'s rows and the content types are read from one database: only
    then can a query join them (``select_related``, ``content_type__model=...``)."""
    # By label: this module is imported with the settings (DATABASE_ROUTERS), maybe before
    # the app registry is ready.
    content_type = apps.get_model("contenttypes", "ContentType")
    return bool(router.db_for_read(model) == router.db_for_read(content_type))
