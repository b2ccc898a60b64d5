from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from .blog import views

urlpatterns = [
    path("", views.ArticleList.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.ArticleDetail.as_view(), name="article-detail"),
    path("admin/", admin.site.urls),
    # The stats API and the public counter ({% pageview_counter article %} on articles).
    path("pageviews/", include("django_pageviews.urls")),
]
