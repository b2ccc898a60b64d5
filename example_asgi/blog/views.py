"""The demo's pages. The counts, lists and series come from the template tags
(``{% load pageview_tags %}``), as a site's templates would use them: see the templates."""

from __future__ import annotations

from typing import Any

from django.views.generic import DetailView, ListView

from django_pageviews.models import PageView

from .models import Article


class ArticleList(ListView):  # type: ignore[type-arg]
    model = Article


class ArticleDetail(DetailView):  # type: ignore[type-arg]
    model = Article

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # This request is counted after the page is rendered: show the count including it.
        context["views"] = PageView.get_view_count(obj=self.object)
        return context


class CachedArticle(DetailView):  # type: ignore[type-arg]
    """The article as a page cache serves it (urls.py): the count on it is as old as the
    copy, and its beacon counts each showing."""

    model = Article
    template_name = "blog/article_cached.html"
