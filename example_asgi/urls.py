from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_page

from .blog import views

CACHED_SECONDS = 60

urlpatterns = [
    path("", views.ArticleList.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.ArticleDetail.as_view(), name="article-detail"),
    # The same article from a page cache: the copies never run the view, and their
    # {% pageview_beacon %} counts each showing (the middleware leaves them to it).
    path(
        "cached/articles/<slug:slug>/",
        cache_page(CACHED_SECONDS)(views.CachedArticle.as_view()),
        name="article-cached",
    ),
    path("admin/", admin.site.urls),
    # The stats API and the public counter ({% pageview_counter article %} on articles).
    path("pageviews/", include("django_pageviews.urls")),
]
