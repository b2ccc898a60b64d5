"""Reads over days: periods, daily series and most-viewed lists, live.

Daily totals are per calendar day in the site's time zone, so periods are whole days:
``days=7`` means today and the six days before it (the original counted a rolling
7 x 24 hours over raw rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, Sum
from django.utils import timezone

from . import live, ranking
from .events import current_day
from .models import PageViewDaily
from .objects import is_object, lookup_values, model_label
from .stored_tops import StoredTop
from .toplists import object_kind, split_name
from .totals import OBJECT, URL, VIEW

T = TypeVar("T")


def day_range(
    days: int | None = None,
    start_date: date | datetime | None = None,
    end_date: date | datetime | None = None,
) -> tuple[date | None, date | None]:
    """(first day, last day), inclusive; None for an open end."""
    if days is not None:
        today = current_day()
        return today - timedelta(days=days - 1), today
    return _as_date(start_date), _as_date(end_date)


def _as_date(value: date | datetime | None) -> date | None:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def _day_query(first: date | None, last: date | None) -> Q:
    query = Q()
    if first is not None:
        query &= Q(day__gte=first)
    if last is not None:
        query &= Q(day__lte=last)
    return query


def _in(day: date, first: date | None, last: date | None) -> bool:
    return (first is None or day >= first) and (last is None or day <= last)


def _object_query(obj: Model) -> Q:
    return Q(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))


def get_views_by_period(
    obj: Model,
    days: int | None = None,
    start_date: date | datetime | None = None,
    end_date: date | datetime | None = None,
) -> int:
    """Views of ``obj`` in the last ``days`` days, or between two dates (inclusive)."""
    first, last = day_range(days, start_date, end_date)
    rows = PageViewDaily.objects.filter(_object_query(obj) & _day_query(first, last))
    stored, by_day = _object_read(obj, first, last, lambda: rows.aggregate(total=Sum("views")))
    return (stored["total"] or 0) + sum(by_day.values())


def get_daily_views(obj: Model, days: int = 30) -> dict[date, int]:
    """``{day: views}`` for each of the last ``days`` days, oldest first, zeros included."""
    first, last = day_range(days)
    rows = (
        PageViewDaily.objects.filter(_object_query(obj) & _day_query(first, last))
        .values_list("day")
        .annotate(total=Sum("views"))
        .order_by()
    )
    stored, by_day = _object_read(obj, first, last, lambda: dict(rows))
    assert first is not None
    result = {first + timedelta(days=i): 0 for i in range(days)}
    for day, total in stored.items():
        result[day] += total
    for day, n in by_day.items():
        if day in result:
            result[day] += n
    return result


def _object_read(
    obj: Model, first: date | None, last: date | None, db_read: Callable[[], T]
) -> tuple[T, Counter[date]]:
    """(``db_read()``, the pending views of ``obj`` by day in range): a few list entries
    per day (toplists.py), however much else is pending."""
    label = model_label(type(obj))
    members = {object_kind(label, field): value for field, value in lookup_values(obj)}
    stored, pending = live.read_lists(
        object_kind(label, ""), first, last, 0, list(members.items()), lambda _: db_read()
    )
    by_day: Counter[date] = Counter()
    for name in pending.names():
        kind, day = split_name(name)
        if kind in members:
            by_day[day] += pending.views(name, members[kind]) or 0
    for (day, target), n in pending.local.items():
        if _in(day, first, last) and is_object(target, obj):
            by_day[day] += n
    return stored, by_day


def get_popular_urls(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
    """``[(url, views)]``, most viewed first."""
    first, last = day_range(days)
    return ranking.top(StoredTop(URL, None, first, last), ranking.urls(), limit, first, last)


def get_popular_view_names(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
    """``[(view name, views)]``, most viewed first; views without a name are left out."""
    first, last = day_range(days)
    stored = StoredTop(VIEW, None, first, last)
    return ranking.top(stored, ranking.view_names(), limit, first, last)


def get_popular_objects(
    model_class: type[Model],
    limit: int = 5,
    days: int | None = None,
    select_related: Sequence[str] | None = None,
    prefetch_related: Sequence[str] | None = None,
) -> list[tuple[Model, int]]:
    """``[(object, views)]`` of one model, most viewed first; deleted objects are skipped
    and the objects are fetched in one query."""
    first, last = day_range(days)
    content_type = ContentType.objects.get_for_model(model_class)
    stored = StoredTop(OBJECT, content_type.pk, first, last)
    # Deleted objects are dropped after ranking: if some were, rank deeper (rare; ranking
    # more than asked every time would read every list deeper for nothing).
    depth = limit
    while True:
        ranked = ranking.top(stored, ranking.objects(model_class), depth, first, last)
        objects = model_class._default_manager.filter(pk__in=[pk for pk, _ in ranked])
        if select_related:
            objects = objects.select_related(*select_related)
        if prefetch_related:
            objects = objects.prefetch_related(*prefetch_related)
        by_pk = {str(obj.pk): obj for obj in objects}
        found = [(by_pk[pk], n) for pk, n in ranked if pk in by_pk]
        if len(found) >= limit or len(ranked) < depth:
            return found[:limit]
        depth = depth * 2 + limit - len(found)


aget_views_by_period = sync_to_async(get_views_by_period)
aget_daily_views = sync_to_async(get_daily_views)
aget_popular_objects = sync_to_async(get_popular_objects)
aget_popular_urls = sync_to_async(get_popular_urls)
aget_popular_view_names = sync_to_async(get_popular_view_names)
