"""The admin dashboard rendered outside a request cycle, for bench/reads.py to time at
any table size: the same view, URL, middleware-free request and templates as a
superuser's page load."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.test import RequestFactory
from django.urls import resolve, reverse

URL_NAME = "admin:django_pageviews_pageviewsdashboard_changelist"


def dashboard_url() -> str:
    return reverse(URL_NAME)


def render_dashboard(query: str = "") -> str:
    """The dashboard's HTML as an active superuser sees it (an unsaved user: no row is
    written); ``query``: e.g. ``"start=2026-01-01&end=2026-01-31"``."""
    url = dashboard_url()
    request = RequestFactory().get(f"{url}?{query}" if query else url)
    request.user = get_user_model()(
        username="bench", is_active=True, is_staff=True, is_superuser=True
    )
    response: TemplateResponse = resolve(url).func(request)
    response.render()
    assert response.status_code == 200, response.status_code
    html: str = response.content.decode()
    return html
