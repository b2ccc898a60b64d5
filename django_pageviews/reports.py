"""Reads over days: periods, daily series and most-viewed lists, live.

Daily totals are per calendar day in the site's time zone, so periods are whole days:
``days=7`` means today and the six days before it (the original counted a rolling
7 x 24 hours over raw rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, QuerySet, Sum
from django.utils import timezone

from . import live
from .events import Target, current_day
from .live import DayTarget
from .models import PageViewDaily
from .objects import is_object, model_label
from .storage import resolve_targets


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
    stored, pending = live.read_all(lambda _: rows.aggregate(total=Sum("views"))["total"])
    buffered = sum(n for (d, t), n in pending.items() if _in(d, first, last) and is_object(t, obj))
    return (stored or 0) + buffered


def get_daily_views(obj: Model, days: int = 30) -> dict[date, int]:
    """``{day: views}`` for each of the last ``days`` days, oldest first, zeros included."""
    first, last = day_range(days)
    rows = (
        PageViewDaily.objects.filter(_object_query(obj) & _day_query(first, last))
        .values_list("day")
        .annotate(total=Sum("views"))
        .order_by()
    )
    stored, pending = live.read_all(lambda _: dict(rows))
    assert first is not None
    result = {first + timedelta(days=i): 0 for i in range(days)}
    for day, total in stored.items():
        result[day] += total
    for (day, target), n in pending.items():
        if day in result and is_object(target, obj):
            result[day] += n
    return result


def _top(
    rows: QuerySet[PageViewDaily],
    column: str,
    keys: Callable[[Counter[DayTarget]], Counter[str]],
    limit: int,
) -> list[tuple[str, int]]:
    """The ``limit`` largest totals by ``column``: database plus pending views, exactly.

    A key with no pending views can only rank in the top ``limit`` if the database alone
    ranks it there, so the database's top ``limit + len(pending keys)`` and the pending
    keys' own totals are all that must be read.
    """

    def db_read(candidates: Counter[DayTarget]) -> Counter[str]:
        wanted = keys(candidates)
        grouped = rows.values_list(column).annotate(total=Sum("views")).order_by("-total", column)
        totals: Counter[str] = Counter(dict(grouped[: limit + len(wanted)]))
        missing = [k for k in wanted if k not in totals]
        if missing:
            totals.update(dict(grouped.filter(**{f"{column}__in": missing})))
        return totals

    totals, pending = live.read_all(db_read)
    totals.update(keys(pending))
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [(k, n) for k, n in ranked if n > 0][:limit]


def _pending_by(
    first: date | None, last: date | None, key: Callable[[Target], str | None]
) -> Callable[[Counter[DayTarget]], Counter[str]]:
    def count(pending: Counter[DayTarget]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (day, target), n in pending.items():
            k = key(target)
            if k and _in(day, first, last):
                counts[k] += n
        return counts

    return count


def get_popular_urls(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
    """``[(url, views)]``, most viewed first."""
    first, last = day_range(days)
    rows = PageViewDaily.objects.filter(_day_query(first, last))
    return _top(rows, "url", _pending_by(first, last, lambda t: t.url), limit)


def get_popular_view_names(limit: int = 5, days: int | None = None) -> list[tuple[str, int]]:
    """``[(view name, views)]``, most viewed first; views without a name are left out."""
    first, last = day_range(days)
    rows = PageViewDaily.objects.filter(_day_query(first, last)).exclude(view_name="")
    return _top(rows, "view_name", _pending_by(first, last, lambda t: t.view_name), limit)


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
    label = model_label(model_class)
    rows = PageViewDaily.objects.filter(_day_query(first, last), content_type=content_type)

    def pending_pks(pending: Counter[DayTarget]) -> Counter[str]:
        ours = Counter(
            {k: n for k, n in pending.items() if k[1].model == label and _in(k[0], first, last)}
        )
        resolved = resolve_targets({t for _, t in ours}, rows.db)  # slugs -> primary keys
        counts: Counter[str] = Counter()
        for (_, target), n in ours.items():
            object_id = resolved[target][1]
            if object_id:
                counts[object_id] += n
        return counts

    # Deleted objects are dropped after ranking: rank some extra to still fill the list.
    ranked = _top(rows, "object_id", pending_pks, limit * 2 + 5)
    objects = model_class._default_manager.filter(pk__in=[pk for pk, _ in ranked])
    if select_related:
        objects = objects.select_related(*select_related)
    if prefetch_related:
        objects = objects.prefetch_related(*prefetch_related)
    by_pk = {str(obj.pk): obj for obj in objects}
    return [(by_pk[pk], n) for pk, n in ranked if pk in by_pk][:limit]


aget_views_by_period = sync_to_async(get_views_by_period)
aget_daily_views = sync_to_async(get_daily_views)
aget_popular_objects = sync_to_async(get_popular_objects)
aget_popular_urls = sync_to_async(get_popular_urls)
aget_popular_view_names = sync_to_async(get_popular_view_names)
