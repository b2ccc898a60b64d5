from __future__ import annotations

from django.contrib import admin
from django.urls import path

from .blog import views

urlpatterns = [
    path("", views.ArticleList.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.ArticleDetail.as_view(), name="article-detail"),
    path("admin/", admin.site.urls),
]
