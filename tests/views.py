from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.contrib.auth.models import Group
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.generic import DetailView, ListView, View

from django_pageviews.mixins import PageViewMixin

from .models import Article, Document, Ticket


class ArticleDetail(DetailView):  # type: ignore[type-arg]
    model = Article
    template_name = "tests/article.html"


class ArticleBySlugNoContext(View):
    """A plain View with a model: the object comes from the slug URL argument."""

    model = Article

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return HttpResponse(f"article {slug}")


class DocumentByCode(View):
    model = Document
    slug_field = "code"
    slug_url_kwarg = "code"

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        return HttpResponse(f"document {code}")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain")


def whoami(request: HttpRequest) -> HttpResponse:
    """A view that loads the user, as most views of a logged-in site do."""
    return HttpResponse(request.user.get_username() or "anonymous")


def numbered(request: HttpRequest, n: int) -> HttpResponse:
    return HttpResponse(f"page {n}")


def article_by_function(request: HttpRequest, pk: int) -> HttpResponse:
    article = get_object_or_404(Article, pk=pk)
    request.pageview_object = article  # type: ignore[attr-defined]
    return HttpResponse(article.title)


async def async_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async")


def status(request: HttpRequest, code: int) -> HttpResponse:
    return HttpResponse(f"status {code}", status=code)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    chunks = [b"chunk-1 ", b"chunk-2"]
    if isinstance(request, ASGIRequest):  # each handler gets the iterator it can stream

        async def agen() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return StreamingHttpResponse(agen())
    return StreamingHttpResponse(iter(chunks))


def download(request: HttpRequest) -> FileResponse:
    import io

    return FileResponse(io.BytesIO(b"file body"), filename="file.txt")


def form(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"{request.method} ok")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view failed")


class AsyncArticleView(View):
    """An async class-based view with a model: counted from its pk, with no query at all.

    Sync views under ASGI each get a thread and a database connection; a thousand at once
    would exhaust a database's connection limit, which is not what the concurrency test is
    about.
    """

    model = Article

    async def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return HttpResponse(f"article {pk}")


class MixinDetail(PageViewMixin, DetailView):  # type: ignore[type-arg]
    model = Article
    template_name = "tests/article.html"


class MixinList(PageViewMixin, ListView):  # type: ignore[type-arg]
    model = Article
    template_name = "tests/article_list.html"

    def get_queryset(self) -> QuerySet[Article]:
        return Article.objects.order_by("slug")


class MixinView(PageViewMixin, View):
    """A plain View: the object comes from get_object() the view defines."""

    def get_object(self) -> Article:
        return get_object_or_404(Article, slug=self.kwargs["slug"])

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return HttpResponse(f"mixin {slug}")


class CategoryList(ListView):  # type: ignore[type-arg]
    """An ordinary page type: a list of one model at a URL whose slug is not a field of
    that model (Group has no ``slug``). Counted by URL: it must never fail its batch."""

    model = Group
    template_name = "tests/group_list.html"


class TicketByNumber(View):
    """Looked up by an integer slug_field, at a URL that takes any text."""

    model = Ticket
    slug_field = "number"

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return HttpResponse(f"ticket {slug}")


class ArticleByTextPk(View):
    """An integer primary key, at a URL that takes any text."""

    model = Article

    def get(self, request: HttpRequest, pk: str) -> HttpResponse:
        return HttpResponse(f"article {pk}")


class GroupByPermission(View):
    """A slug_field that names a many-to-many relation: no row is found by it."""

    model = Group
    slug_field = "permissions"

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return HttpResponse(f"group {slug}")


class ChaosGroupList(ListView):  # type: ignore[type-arg]
    """A poison page for the chaos suite (issue #10, item 2): a ListView of a model with
    no ``slug`` field, at a ``<slug:slug>`` URL. Its object cannot be resolved: each view
    must count for its URL and view name. No query: the list is always empty."""

    model = Group
    template_name = "tests/article_list.html"

    def get_queryset(self) -> QuerySet[Group]:
        return Group.objects.none()


async def chaos_slow_page(request: HttpRequest, n: int) -> HttpResponse:
    """A page that takes a while to answer, for the chaos suite: some requests are still
    running when a server is told to stop, and finish during its graceful shutdown."""
    await asyncio.sleep(0.3)
    return HttpResponse(f"slow {n}")


class BeaconArticle(DetailView):  # type: ignore[type-arg]
    """A TemplateResponse with {% pageview_beacon %}: rendered by the handler, after the
    view returned and before the middleware sees the response."""

    model = Article
    template_name = "tests/beacon.html"


def beacon_object_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A page rendered inside the view, naming its object to the beacon tag."""
    return render(
        request, "tests/beacon_object.html", {"article": get_object_or_404(Article, pk=pk)}
    )
