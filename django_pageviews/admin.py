"""Read-only admin for raw views, daily totals, processed batches and requests not counted.

Everything here is written by the pipeline, never by hand: an edited or deleted row would
make the raw table and the rollup disagree, so the admin only shows. The raw table is the
biggest table of a busy site, so each changelist page load must stay cheap whatever its
size: no full COUNT(*), no DISTINCT over the table, a page of rows by an index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal

from .dashboard.views import dashboard, may_view
from .models import PageView, PageViewDaily, PageViewsDashboard, ProcessedBatch, SkippedDaily
from .routers import content_types_alongside

if TYPE_CHECKING:
    _Paginator = Paginator[Any]
    _ModelAdmin = admin.ModelAdmin[Any]
else:  # generic in django-stubs only
    _Paginator = Paginator
    _ModelAdmin = admin.ModelAdmin

# Characters of the visitor hash shown in lists: enough to tell visitors apart by eye.
SHORT_VISITOR_HASH = 8


class CappedCountPaginator(_Paginator):
    """A paginator that counts at most ``max_count`` rows.

    Django's changelist reads ``paginator.count`` on every page load, and a plain
    paginator answers with COUNT(*) over every row that matches: a scan of the whole raw
    table, which grows by one row per view. Counting the rows of a slice instead
    (``SELECT COUNT(*) FROM (SELECT ... LIMIT n)``) stops after ``max_count`` rows, so a
    page load costs the same for ten rows or a billion. The price: past the cap the
    total shown is the cap and only the first ``max_count`` rows can be paged through;
    filters and search narrow the list down to what one looks for.
    """

    max_count = 10_000

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            # The order does not change how many rows a slice holds; dropping it lets the
            # database stop at the first max_count rows it finds instead of sorting them all.
            return object_list.order_by()[: self.max_count].count()
        return min(len(object_list), self.max_count)


class ReadOnlyAdmin(_ModelAdmin):
    """View permission only: rows come from the pipeline, and stay as it wrote them."""

    show_full_result_count = False  # else one more COUNT(*) over the whole table per page
    paginator = CappedCountPaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ContentTypeColumnAdmin(ReadOnlyAdmin):
    """Shows each row's content type without a query per row: joined where the content
    types share the rows' database; on a database of their own (``PAGEVIEW_DATABASE``)
    no join can reach them, and the page's few are read in one more query instead."""

    def get_list_select_related(self, request: HttpRequest) -> list[str]:
        return ["content_type"] if content_types_alongside(self.model) else []

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)
        if content_types_alongside(self.model):
            return rows
        return rows.prefetch_related("content_type")


class UrlPrefixSearchAdmin(ContentTypeColumnAdmin):
    """Search: the URL starts with each search term, case-sensitively (paths are).

    Both prefix lookups are applied, because each database serves a different one from an
    index on ``url``: MariaDB/MySQL serve ``LIKE`` (``^url``, i.e. ``url__istartswith``)
    with a range scan but not ``LIKE BINARY`` (``url__startswith``); PostgreSQL can serve
    ``url LIKE 'x%'`` from a ``varchar_pattern_ops`` (or C-collated) index, but never
    ``UPPER(url) LIKE``. The lookup no index serves only filters the rows the other found.
    SQLite has no case-sensitive LIKE: there the search is case-insensitive.
    """

    search_fields = ["^url"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        for term in smart_split(search_term):  # the terms as Django's search splits them
            if term.startswith(('"', "'")) and term[0] == term[-1]:
                term = unescape_string_literal(term)
            queryset = queryset.filter(url__startswith=term)
        return queryset, may_have_duplicates


@admin.register(PageView)
class PageViewAdmin(UrlPrefixSearchAdmin):
    list_display = [
        "timestamp",
        "url",
        "view_name",
        "content_type",
        "object_id",
        "ip_address",
        "visitor",
    ]
    # A date filter rather than date_hierarchy: the hierarchy lists the years, months or
    # days that hold rows with SELECT DISTINCT over a truncated timestamp, which reads
    # every row in range (a month of a busy site's views) on each page load. The filter's
    # links (today, past 7 days, ...) are plain ranges served by the timestamp index.
    list_filter = [("timestamp", admin.DateFieldListFilter), "content_type"]
    # The primary key follows insertion, and its index serves this order on every
    # database without a sort.
    ordering = ["-id"]
    # Listed as read-only, so that the detail page also shows event_id (not editable,
    # hence left out of the admin form otherwise).
    fields = (
        "timestamp",
        "url",
        "view_name",
        "content_type",
        "object_id",
        "ip_address",
        "user_agent",
        "session_key",
        "visitor_hash",
        "event_id",
    )
    readonly_fields = fields

    @admin.display(description="visitor", ordering="visitor_hash")
    def visitor(self, obj: PageView) -> str:
        return obj.visitor_hash[:SHORT_VISITOR_HASH]


@admin.register(PageViewDaily)
class PageViewDailyAdmin(UrlPrefixSearchAdmin):
    list_display = ["day", "url", "view_name", "content_type", "object_id", "views"]
    # A date filter rather than date_hierarchy, for the reason given on PageViewAdmin.
    list_filter = [("day", admin.DateFieldListFilter), "content_type"]
    ordering = ["-day", "-views"]


@admin.register(ProcessedBatch)
class ProcessedBatchAdmin(ReadOnlyAdmin):
    list_display = ["batch_id", "views", "created_at"]
    ordering = ["-created_at"]


@admin.register(SkippedDaily)
class SkippedDailyAdmin(ReadOnlyAdmin):
    """Why counts are lower than the server's logs: requests not counted, by reason."""

    list_display = ["day", "reason", "requests"]
    list_filter = [("day", admin.DateFieldListFilter), "reason"]
    ordering = ["-day", "-requests"]


@admin.register(PageViewsDashboard)
class PageViewsDashboardAdmin(ReadOnlyAdmin):
    """The "Page views" dashboard (dashboard/) as this entry's one page: listed in the
    admin index for whoever may read the daily totals, at ``.../pageviewsdashboard/``."""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_view(request)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name="{}_{}_changelist".format(*info))]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return dashboard(request, self)
