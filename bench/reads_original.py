"""What the original django-pageviews 0.2.6 asked the database for each read, as a baseline
for bench/reads.py (0.2.6 is not on PyPI here): the same queries, reimplemented over the
raw table the scenario fills, so that the package's reads and the original's are timed in
the same run, on the same rows.

0.2.x stored one row per view and kept nothing else: every count was a ``COUNT(*)`` over
the raw rows, every most-viewed list a ``GROUP BY`` over them, ordered by the count. Its
``PageView`` class methods, which its template tags called (as read in the original's
``models.py`` on GitHub, TUSKION/django-pageviews, the newest version there):

- ``get_view_count(obj)`` / ``(url=...)``: ``COUNT(*)`` of the object's rows (content type
  and object id) / of the URL's rows;
- ``get_view_counts_for_objects(objects)``: one ``GROUP BY object_id`` over the rows of
  the objects' ids (``IN``);
- ``get_popular_objects(model, limit, days)``: ``GROUP BY object_id`` over the content
  type's rows (since ``now - days``), ordered by the count, ``limit * 2`` groups, then one
  query for those objects without an empty slug, of which the first ``limit`` are kept;
- ``get_popular_urls(limit, days)``, ``get_popular_view_names(limit, days)``: ``GROUP BY``
  URL / view name (not null nor empty) over every row (since ``now - days``);
- ``get_daily_views(obj, days)``: the object's rows of the days (the timestamp's date in
  the current time zone), grouped by that date, and the days without views filled in.

The table differs from 0.2.x's in ways that favour neither side much: the object id is
text (0.2.x: an integer), and the rows have an event id and a visitor hash instead of an
address, a user agent and a session key (0.2.x's rows were wider, so its scans read
more). The indexes these queries use are the ones 0.2.x's migration made: (content type,
object id), the URL (on PostgreSQL its ``varchar_pattern_ops`` index, which serves
equality too), the timestamp, and the content type's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Model, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_pageviews.models import PageView


def _rows(days: int | None = None) -> QuerySet[PageView]:
    if days is None:
        return PageView.objects.all()
    return PageView.objects.filter(timestamp__gte=timezone.now() - timedelta(days=days))


def _object_rows(obj: Model) -> QuerySet[PageView]:
    content_type = ContentType.objects.get_for_model(obj)
    return PageView.objects.filter(content_type=content_type, object_id=str(obj.pk))


def view_count(obj: Model | None = None, url: str | None = None) -> int:
    rows = _object_rows(obj) if obj is not None else _rows()
    return (rows.filter(url=url) if url is not None else rows).count()


def view_counts_for_objects(objects: Sequence[Model]) -> dict[Any, int]:
    content_type = ContentType.objects.get_for_model(type(objects[0]))
    ids = [str(obj.pk) for obj in objects]
    grouped = (
        PageView.objects.filter(content_type=content_type, object_id__in=ids)
        .values("object_id")
        .annotate(count=Count("id"))
    )
    counts = {row["object_id"]: row["count"] for row in grouped}
    return {obj.pk: counts.get(str(obj.pk), 0) for obj in objects}


def popular_objects(model: type[Model], limit: int, days: int | None = None) -> list[Any]:
    content_type = ContentType.objects.get_for_model(model)
    grouped = list(
        _rows(days)
        .filter(content_type=content_type)
        .values("object_id")
        .annotate(count=Count("id"))
        .order_by("-count")[: limit * 2]
    )
    found = model._default_manager.filter(pk__in=[row["object_id"] for row in grouped])
    by_id = {str(obj.pk): obj for obj in found.exclude(slug__isnull=True).exclude(slug="")}
    ranked = [
        (by_id[row["object_id"]], row["count"]) for row in grouped if row["object_id"] in by_id
    ]
    return ranked[:limit]


def popular(field: str, limit: int, days: int | None = None) -> list[tuple[str, int]]:
    """Most-viewed URLs (``field="url"``) or view names, as 0.2.x grouped them."""
    rows = _rows(days)
    if field == "view_name":
        rows = rows.exclude(view_name__isnull=True).exclude(view_name="")
    grouped = rows.values(field).annotate(count=Count("id")).order_by("-count")[:limit]
    return [(row[field], row["count"]) for row in grouped]


def daily_views(obj: Model, days: int) -> dict[Any, int]:
    last = timezone.localdate()
    first = last - timedelta(days=days - 1)
    grouped = (
        _object_rows(obj)
        .filter(timestamp__date__gte=first, timestamp__date__lte=last)
        .annotate(date=TruncDate("timestamp"))
        .values("date")
        .annotate(count=Count("id"))
        .order_by("date")
    )
    result = {first + timedelta(days=i): 0 for i in range(days)}
    result.update({row["date"]: row["count"] for row in grouped})
    return result


def reads(obj: Model, many: Sequence[Model]) -> dict[str, Callable[[], object]]:
    """The reads 0.2.6 had, under the names of bench/reads_measure.py's ``TARGETS``."""
    model = type(obj)
    return {
        "get_view_count(obj)": lambda: view_count(obj),
        "get_view_count(url=...)": lambda: view_count(url=f"/articles/{obj.pk}/"),
        "get_view_counts_for_objects(50)": lambda: view_counts_for_objects(many),
        "get_popular_objects(Article, 10, days=7)": lambda: popular_objects(model, 10, 7),
        "get_popular_objects(Article, 10, days=30)": lambda: popular_objects(model, 10, 30),
        "get_popular_objects(Article, 10, days=90)": lambda: popular_objects(model, 10, 90),
        "get_popular_objects(Article, 10) all time": lambda: popular_objects(model, 10),
        "get_popular_urls(10, days=7)": lambda: popular("url", 10, 7),
        "get_popular_urls(10) all time": lambda: popular("url", 10),
        "get_popular_view_names(5, days=7)": lambda: popular("view_name", 5, 7),
        "get_popular_view_names(5) all time": lambda: popular("view_name", 5),
        "get_daily_views(obj, 30)": lambda: daily_views(obj, 30),
    }
