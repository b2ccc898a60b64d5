"""Raw views, daily totals and the ids of batches already written.

Counting reads use ``PageViewDaily`` (one row per day and target), never COUNT(*) over
the raw table; raw rows are kept for detail and can be switched off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar, cast

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from .events import (
    OBJECT_ID_MAX_LENGTH,
    URL_MAX_LENGTH,
    VIEW_NAME_MAX_LENGTH,
    VISITOR_HASH_LENGTH,
)

TARGET_HASH_LENGTH = 32
M = TypeVar("M", bound=models.Model)


class PageView(models.Model):
    """One page view. Field names follow the original 0.2.x model; of its indexes, those
    that something still reads by (docs/decisions.md, "The raw table keeps the indexes
    its readers use")."""

    # No constraint in the database: the content types may live in another one
    # (PAGEVIEW_DATABASE, routers.py), and no database enforces a key across two. Nor
    # Django's cascade, which looks on the content type's database: content_types.py
    # deletes a deleted content type's views where they are.
    content_type = models.ForeignKey(
        ContentType, on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False
    )
    # Text, not an integer: objects with UUID or string primary keys can be counted too.
    object_id = models.CharField(max_length=OBJECT_ID_MAX_LENGTH, null=True, blank=True)
    content_object = GenericForeignKey("content_type", "object_id")
    url = models.CharField(max_length=URL_MAX_LENGTH)
    view_name = models.CharField(max_length=VIEW_NAME_MAX_LENGTH, null=True, blank=True)
    ip_address = models.GenericIPAddressField(blank=True, null=True)
    user_agent = models.TextField(blank=True, null=True)
    session_key = models.CharField(max_length=40, blank=True, null=True)
    timestamp = models.DateTimeField(default=timezone.now)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    visitor_hash = models.CharField(max_length=VISITOR_HASH_LENGTH, blank=True, default="")

    class Meta:
        # Every index costs each raw row an insertion (about 1 us of the database server's
        # CPU per view and index, on PostgreSQL). Kept: an object's rows (the mixin's
        # unique visitors; a content type's, for the admin's filter and the cascade when
        # one is deleted), a period's (the admin's date filter, clean_pageviews), and the
        # admin's URL prefix search. On PostgreSQL that last one needs the
        # varchar_pattern_ops operator class (under a non-C collation a plain index serves
        # no LIKE 'x%'); elsewhere ``opclasses`` is ignored and the index is a plain one.
        # The first two under the names 0.2.x gave them: an upgraded table keeps its own.
        indexes = [
            models.Index(
                fields=["content_type", "object_id"], name="django_page_content_4f111b_idx"
            ),
            models.Index(fields=["timestamp"], name="django_page_timesta_a2ab55_idx"),
            models.Index(
                fields=["url"], name="pageview_url_prefix", opclasses=["varchar_pattern_ops"]
            ),
        ]
        verbose_name = "Page View"
        verbose_name_plural = "Page Views"

    def __str__(self) -> str:
        if self.content_type_id is not None:
            return f"View of {self.content_type_id}:{self.object_id} at {self.timestamp}"
        return f"View of {self.url} at {self.timestamp}"

    # The API of the original 0.2.x package, and async twins, written out with their
    # types. The work is in queries, reports and manual, imported when called: those
    # modules import this one.

    @staticmethod
    def get_view_count(
        obj: models.Model | None = None, url: str | None = None, view_name: str | None = None
    ) -> int:
        """Views of everything that matches all the given criteria (all views if none)."""
        from .queries import get_view_count

        return get_view_count(obj, url, view_name)

    @staticmethod
    def get_view_counts_for_objects(objects: Iterable[models.Model]) -> dict[Any, int]:
        """``{pk: views}`` for every object given (0 for unviewed ones), in one query."""
        from .queries import get_view_counts_for_objects

        return get_view_counts_for_objects(objects)

    @staticmethod
    def get_views_by_period(
        obj: models.Model,
        days: int | None = None,
        start_date: date | datetime | None = None,
        end_date: date | datetime | None = None,
    ) -> int:
        """Views of ``obj`` in the last ``days`` days, or between two dates (inclusive)."""
        from .reports import get_views_by_period

        return get_views_by_period(obj, days, start_date, end_date)

    @staticmethod
    def get_daily_views(obj: models.Model, days: int = 30) -> dict[date, int]:
        """``{day: views}`` for each of the last ``days`` days, oldest first, zeros included."""
        from .reports import get_daily_views

        return get_daily_views(obj, days)

    @staticmethod
    def get_popular_objects(
        model_class: type[M],
        limit: int = 5,
        days: int | None = None,
        select_related: Sequence[str] | None = None,
        prefetch_related: Sequence[str] | None = None,
    ) -> list[tuple[M, int]]:
        """``[(object, views)]`` of one model, most viewed first (deleted ones skipped)."""
        from .reports import get_popular_objects

        found = get_popular_objects(model_class, limit, days, select_related, prefetch_related)
        return cast(list[tuple[M, int]], found)

    @staticmethod
    def get_popular_urls(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
        """``[(url, views)]``, most viewed first."""
        from .reports import get_popular_urls

        return get_popular_urls(limit, days)

    @staticmethod
    def get_popular_view_names(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
        """``[(view name, views)]``, most viewed first; views without a name left out."""
        from .reports import get_popular_view_names

        return get_popular_view_names(limit, days)

    @staticmethod
    def increment_view_count(
        obj: models.Model,
        ip_address: str | None = None,
        user_agent: str | None = None,
        session_key: str | None = None,
        request: HttpRequest | None = None,
    ) -> bool:
        """Record a view of ``obj`` unless the same visitor viewed it within
        PAGEVIEW_THROTTLE_SECONDS; True when it counted. Never raises."""
        from .manual import increment_view_count

        return increment_view_count(obj, ip_address, user_agent, session_key, request)

    @staticmethod
    async def aget_view_count(
        obj: models.Model | None = None, url: str | None = None, view_name: str | None = None
    ) -> int:
        return await sync_to_async(PageView.get_view_count)(obj, url, view_name)

    @staticmethod
    async def aget_view_counts_for_objects(objects: Iterable[models.Model]) -> dict[Any, int]:
        return await sync_to_async(PageView.get_view_counts_for_objects)(objects)

    @staticmethod
    async def aget_views_by_period(
        obj: models.Model,
        days: int | None = None,
        start_date: date | datetime | None = None,
        end_date: date | datetime | None = None,
    ) -> int:
        return await sync_to_async(PageView.get_views_by_period)(obj, days, start_date, end_date)

    @staticmethod
    async def aget_daily_views(obj: models.Model, days: int = 30) -> dict[date, int]:
        return await sync_to_async(PageView.get_daily_views)(obj, days)

    @staticmethod
    async def aget_popular_objects(
        model_class: type[M],
        limit: int = 5,
        days: int | None = None,
        select_related: Sequence[str] | None = None,
        prefetch_related: Sequence[str] | None = None,
    ) -> list[tuple[M, int]]:
        return await sync_to_async(PageView.get_popular_objects)(
            model_class, limit, days, select_related, prefetch_related
        )

    @staticmethod
    async def aget_popular_urls(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
        return await sync_to_async(PageView.get_popular_urls)(limit, days)

    @staticmethod
    async def aget_popular_view_names(
        limit: int = 5, days: int | None = None
    ) -> list[tuple[str, int]]:
        return await sync_to_async(PageView.get_popular_view_names)(limit, days)

    @staticmethod
    async def aincrement_view_count(
        obj: models.Model,
        ip_address: str | None = None,
        user_agent: str | None = None,
        session_key: str | None = None,
        request: HttpRequest | None = None,
    ) -> bool:
        return await sync_to_async(PageView.increment_view_count)(
            obj, ip_address, user_agent, session_key, request
        )


class PageViewDaily(models.Model):
    """Views per day and target, added to by an upsert in each batch."""

    day = models.DateField()
    # Hash of (content type, object id, url, view name): a fixed-width unique key with no
    # NULL in it, which every database can index whatever the URL length.
    target_hash = models.CharField(max_length=TARGET_HASH_LENGTH)
    content_type = models.ForeignKey(
        ContentType, on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False
    )
    object_id = models.CharField(max_length=OBJECT_ID_MAX_LENGTH, blank=True, default="")
    url = models.CharField(max_length=URL_MAX_LENGTH)
    view_name = models.CharField(max_length=VIEW_NAME_MAX_LENGTH, blank=True, default="")
    views = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "target_hash"], name="pageview_daily_target"),
        ]
        indexes = [
            models.Index(fields=["content_type", "object_id", "day"]),
            models.Index(fields=["url"]),
            models.Index(fields=["view_name"]),
            models.Index(fields=["day"]),
        ]
        verbose_name = "Daily page views"
        verbose_name_plural = "Daily page views"

    def __str__(self) -> str:
        return f"{self.url} on {self.day}: {self.views}"


class _KeyTotal(models.Model):
    """Views of one key: a URL (kind ``u``), a view name (``v``) or an object (``o``).

    Kept by the drain in the transaction that adds to ``PageViewDaily`` (totals.py), so
    that a most-viewed list reads the top of an index instead of summing daily rows.
    """

    kind = models.CharField(max_length=1)
    # Hash of (kind, content type, value): a fixed-width key every database can index.
    key_hash = models.CharField(max_length=TARGET_HASH_LENGTH)
    content_type = models.ForeignKey(
        ContentType, on_delete=models.DO_NOTHING, null=True, blank=True, db_constraint=False
    )
    value = models.CharField(max_length=URL_MAX_LENGTH)  # the URL, view name or object id
    views = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.kind} {self.value}: {self.views}"


class PageViewTotal(_KeyTotal):
    """All-time views per URL, view name and object (the sum of their daily rows)."""

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key_hash"], name="pageview_total_key")]
        # URLs and view names (no content type) by kind alone: PostgreSQL does not read an
        # index in order past an IS NULL condition.
        indexes = [
            models.Index(fields=["kind", "content_type", "views"]),
            models.Index(fields=["kind", "views"]),
        ]
        verbose_name = "Total page views"
        verbose_name_plural = "Total page views"


class PageViewKeyDaily(_KeyTotal):
    """Views per day and URL, view name or object: each day's list sorted by an index,
    which the most-viewed lists of a period read from the top (ranking.py)."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "key_hash"], name="pageview_keydaily_key"),
        ]
        indexes = [
            models.Index(fields=["kind", "content_type", "day", "views"]),
            models.Index(fields=["kind", "day", "views"]),
            # With the views: a key's sum over a period reads the index alone.
            models.Index(fields=["key_hash", "day", "views"]),
        ]
        verbose_name = "Daily page views per key"
        verbose_name_plural = "Daily page views per key"


class ProcessedBatch(models.Model):
    """A batch id recorded in the same transaction as its views: a replay is skipped."""

    batch_id = models.CharField(max_length=64, unique=True)
    views = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # On the Redis path, the claim's mark (the Redis buffer's epoch and claim sequence
    # number), committed with the batch: a Redis whose sequence is behind the highest
    # committed one for its epoch went back in time (redis/restore.py).
    redis_epoch = models.CharField(max_length=64, blank=True, default="")
    redis_seq = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["redis_epoch", "redis_seq"])]
        verbose_name = "Processed batch"
        verbose_name_plural = "Processed batches"

    def __str__(self) -> str:
        return self.batch_id


class VisitorSalt(models.Model):
    """The random salt of one day's visitor hashes, shared by every process.

    Deleted once the day after its day is over: from then on, nobody (not even with the
    database and SECRET_KEY) can recompute that day's hashes from guessed addresses.
    """

    day = models.DateField(unique=True)
    salt = models.CharField(max_length=64)

    class Meta:
        verbose_name = "Visitor salt"
        verbose_name_plural = "Visitor salts"

    def __str__(self) -> str:
        return f"salt of {self.day}"


class DailyVisitor(models.Model):
    """One visitor seen on one day, by the day's visitor hash (privacy.py): what makes a
    visitor count once a day however many batches bring their views. The hash is keyed
    with the day's random salt, deleted once the day after is over (decision 11): from then
    on a row cannot be linked to an address, and none links two days. Deleted with the
    processed batch ids (``PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS``): the count stays in
    ``VisitorsDaily``."""

    day = models.DateField()
    visitor_hash = models.CharField(max_length=VISITOR_HASH_LENGTH)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "visitor_hash"], name="pageview_visitor_day"),
        ]
        verbose_name = "Visitor of a day"
        verbose_name_plural = "Visitors of a day"

    def __str__(self) -> str:
        return f"visitor of {self.day}"


class VisitorsDaily(models.Model):
    """Distinct visitors per day of the whole site, added to in the transaction that adds
    their ``DailyVisitor`` rows: the dashboard reads one row per day."""

    day = models.DateField(unique=True)
    visitors = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "Daily unique visitors"
        verbose_name_plural = "Daily unique visitors"

    def __str__(self) -> str:
        return f"{self.visitors} visitors on {self.day}"


class SkippedDaily(models.Model):
    """Requests not counted as views, per day and reason (bot, dnt, throttled, ...),
    summed over every process: the answer to "why is my count lower than my logs"."""

    day = models.DateField()
    reason = models.CharField(max_length=20)
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "reason"], name="pageview_skipped_reason"),
        ]
        verbose_name = "Requests not counted"
        verbose_name_plural = "Requests not counted"

    def __str__(self) -> str:
        return f"{self.reason} on {self.day}: {self.requests}"


class UnsettledShipment(models.Model):
    """A shipment to Redis whose reply never came, kept at shutdown while Redis stayed
    unreachable: it may or may not be in Redis. ``cleanup_old_buffer_data`` settles it
    exactly once (see ``redis/unsettled.py``)."""

    shipment_id = models.CharField(max_length=64, unique=True)
    payload = models.TextField()  # JSON: the shipment's count fields and raw events
    views = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "Unsettled shipment"
        verbose_name_plural = "Unsettled shipments"

    def __str__(self) -> str:
        return self.shipment_id


class PageViewsDashboard(PageViewDaily):
    """No table of its own: the admin's entry for the dashboard (dashboard/), which reads
    the daily and key totals. A proxy model is how an app puts a page in the admin index
    of the site's default ``admin.site`` without touching its URLconf."""

    class Meta:
        proxy = True
        verbose_name = "Page views dashboard"
        verbose_name_plural = "Page views dashboard"
