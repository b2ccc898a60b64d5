"""The dashboard page: staff with the permission that shows the daily totals in the admin.

Served as the changelist of a proxy model (``PageViewsDashboard``) by its ModelAdmin, so
it is listed in the admin index and wrapped by ``admin_site.admin_view`` (anonymous and
non-staff users are sent to the login page) with no URL for the site to add. A staff
user without ``django_pageviews.view_pageviewdaily`` gets 403, as from the stats API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse

from django_pageviews.api.access import STATS_PERMISSION

from .charts import daily_bars
from .data import gather
from .periods import RangeForm

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

TEMPLATE = "admin/django_pageviews/dashboard.html"


def may_view(request: HttpRequest) -> bool:
    user: Any = getattr(request, "user", None)
    return bool(
        user is not None and user.is_active and user.is_staff and user.has_perm(STATS_PERMISSION)
    )


def dashboard(request: HttpRequest, model_admin: ModelAdmin[Any]) -> TemplateResponse:
    if not may_view(request):
        raise PermissionDenied
    form = RangeForm(request.GET) if {"start", "end"} & set(request.GET) else RangeForm()
    custom = form.period() if form.is_bound and form.is_valid() else None
    figures = gather(custom)
    request.current_app = model_admin.admin_site.name  # URLs reversed in this admin site
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Page views",
        "opts": model_admin.model._meta,
        "form": form,
        "dash": figures,
        "chart": daily_bars(
            [(day, n) for day, n, _ in figures.daily], f"Views per day, {figures.period.label}"
        ),
        "chart_total": sum(n for _, n, _ in figures.daily),
    }
    return TemplateResponse(request, TEMPLATE, context)
