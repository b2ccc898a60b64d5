"""PageViewMixin for models and class-based views, as in the original 0.2.x package.

Models get their view counts as attributes; class-based views record the view of
``get_tracked_object()``.
"""

from __future__ import annotations

import logging
from datetime import date
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.signals import setting_changed
from django.db.models import Model
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponseBase

from . import stats
from .middleware import MIDDLEWARE_PATH
from .tracking import REQUEST_OBJECT_ATTRIBUTE

logger = logging.getLogger(__name__)


class PageViewMixin:
    """Mix into a model or a class-based view (View, ListView, DetailView)."""

    # -- on a model ------------------------------------------------------------------

    @property
    def view_count(self) -> int:
        from .queries import get_view_count

        return get_view_count(obj=self._as_model())

    @property
    def unique_view_count(self) -> int:
        """Distinct visitors (by the daily visitor hash) among the stored raw views."""
        from django.contrib.contenttypes.models import ContentType

        from .models import PageView

        obj = self._as_model()
        rows = PageView.objects.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
        ).exclude(visitor_hash="")
        return rows.values("visitor_hash").distinct().count()

    def daily_views(self, days: int = 30) -> dict[date, int]:
        from .reports import get_daily_views

        return get_daily_views(self._as_model(), days=days)

    @classmethod
    def get_popular(cls, limit: int = 5, days: int | None = None) -> list[tuple[Model, int]]:
        from .reports import get_popular_objects

        assert issubclass(cls, Model), "get_popular() is for models"
        return get_popular_objects(cls, limit=limit, days=days)

    def _as_model(self) -> Model:
        assert isinstance(self, Model), "this attribute is for models"
        return self

    # -- on a class-based view -------------------------------------------------------

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        try:
            obj = self.get_tracked_object()
        except Exception:
            # A database error (or a bug) must not break the response, nor pass unseen:
            # logged and counted, and the page is tracked without its object.
            stats.incr(stats.SKIP_ERROR)
            logger.exception("Finding the object %s shows failed.", type(self).__name__)
            obj = None
        if obj is not None:
            setattr(request, REQUEST_OBJECT_ATTRIBUTE, obj)
        if not middleware_installed():
            # Without the middleware the view records itself, by the same rules.
            from .middleware import track

            track(request, response)
        return response

    def get_tracked_object(self) -> Model | None:
        """The object this view shows: ``self.object``, ``self.get_object()``, or the first
        object of a list view. None leaves it to the URL arguments (pk/id/slug with the
        view's model), which the writer resolves later without a query here. Any other
        error than "no such object" propagates; ``dispatch`` logs and counts it."""
        obj = getattr(self, "object", None)
        if isinstance(obj, Model):
            return obj
        get_object = getattr(self, "get_object", None)
        if callable(get_object):
            try:
                obj = get_object()
            except (Http404, ObjectDoesNotExist):  # no such object: nothing to track
                return None
            return obj if isinstance(obj, Model) else None
        object_list = getattr(self, "object_list", None)
        first = getattr(object_list, "first", None)
        if callable(first):
            obj = first()
            return obj if isinstance(obj, Model) else None
        return None


@cache
def middleware_installed() -> bool:
    return MIDDLEWARE_PATH in getattr(settings, "MIDDLEWARE", [])


@receiver(setting_changed)
def _clear(*, setting: str, **kwargs: object) -> None:
    if setting == "MIDDLEWARE":
        middleware_installed.cache_clear()
