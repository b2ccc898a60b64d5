from __future__ import annotations

from typing import Any

from django.views.generic import DetailView, ListView

from django_pageviews.models import PageView

from .models import Article


class ArticleList(ListView):  # type: ignore[type-arg]
    model = Article

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        articles = list(context["object_list"])
        counts = PageView.get_view_counts_for_objects(articles)
        context["rows"] = [(a, counts[a.pk]) for a in articles]
        return context


class ArticleDetail(DetailView):  # type: ignore[type-arg]
    model = Article

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # This request is counted after the page is rendered: show the count including it.
        context["views"] = PageView.get_view_count(obj=self.object)
        return context
