"""The scrape URL, for a project's urls.py (needs the ``prometheus`` extra):
``path("metrics/", include("django_pageviews.metrics.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "pageviews_metrics"

urlpatterns = [path("", views.metrics, name="metrics")]
