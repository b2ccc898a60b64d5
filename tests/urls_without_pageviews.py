"""A URLconf that does not include django_pageviews.urls (the counter tag must say so)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [path("", views.plain, name="plain")]
