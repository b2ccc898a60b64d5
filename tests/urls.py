from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.cache import cache_page
from django.views.decorators.csrf import csrf_exempt

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("pageviews/", include("django_pageviews.urls")),
    path("metrics/", include("django_pageviews.metrics.urls")),
    path("", views.plain, name="plain"),
    path("plain/", views.plain),
    path("whoami/", views.whoami),
    re_path(r"^long/", views.plain, name="long"),
    path("pages/<int:n>/", views.numbered, name="numbered-page"),
    path("articles/<int:pk>/", views.ArticleDetail.as_view(), name="article-detail"),
    path("by-slug/<slug:slug>/", views.ArticleBySlugNoContext.as_view(), name="article-slug"),
    path("docs/<str:code>/", views.DocumentByCode.as_view(), name="document"),
    path("async-articles/<int:pk>/", views.AsyncArticleView.as_view(), name="article-async"),
    path("mixin/articles/<int:pk>/", views.MixinDetail.as_view(), name="mixin-detail"),
    path("mixin/articles/", views.MixinList.as_view(), name="mixin-list"),
    path("mixin/by-slug/<slug:slug>/", views.MixinView.as_view(), name="mixin-view"),
    path("fn/<int:pk>/", views.article_by_function, name="article-fn"),
    path("beacon/articles/<int:pk>/", views.BeaconArticle.as_view(), name="beacon-article"),
    path(
        "beacon/cached/<int:pk>/",
        cache_page(600)(views.BeaconArticle.as_view()),
        name="beacon-cached-article",
    ),
    path("beacon/objects/<int:pk>/", views.beacon_object_page, name="beacon-object"),
    path("async/", views.async_page, name="async-page"),
    path("status/<int:code>/", views.status, name="status"),
    path("stream/", views.stream, name="stream"),
    path("download/", views.download, name="download"),
    path("form/", csrf_exempt(views.form), name="form"),
    path("boom/", views.boom, name="boom"),
    path("static/app.css", views.plain, name="static"),
    re_path(r"^both/?$", views.plain, name="both"),  # 200 with and without the slash
    path("robots.txt", views.plain, name="robots"),
    # Drain tests: pages whose object cannot be looked up (counted by URL).
    path("category/<slug:slug>/", views.CategoryList.as_view(), name="category"),
    path("tickets/<str:slug>/", views.TicketByNumber.as_view(), name="ticket"),
    path("article-text/<str:pk>/", views.ArticleByTextPk.as_view(), name="article-text"),
    path("group-perm/<slug:slug>/", views.GroupByPermission.as_view(), name="group-perm"),
]

urlpatterns += [
    path("chaos/category/<slug:slug>/", views.ChaosGroupList.as_view(), name="chaos-category"),
    path("chaos/slow/<int:n>/", views.chaos_slow_page, name="chaos-slow"),
]
