"""The dashboard's figures, each read from the daily and key totals or the read API.

Nothing here reads the raw ``PageView`` table: a site with ten million raw rows renders
the dashboard as fast as one with ten. The reads, by figure:

- views per day (the periods and the chart): the URL rows of ``PageViewKeyDaily``
  (every view has exactly one URL, so a day's URL rows sum to its views), summed by day
  over the index (kind, day, views): one statement, as many index entries as URLs viewed
  in the period, never one per view;
- most-viewed lists: ranking.top over the key rows (stored_tops.py), live;
- the models with viewed objects: one index seek per model on ``PageViewTotal``;
- requests not counted: ``SkippedDaily``, a few rows per day;
- views not yet written: live.py's total, read with the days' sums in one live read;
- the pipeline's health: pipeline_health.py (a few Redis commands, indexed single rows).

- unique visitors per day: ``VisitorsDaily``, one row per day (visitors.py). A visitor's
  hash changes every day, so a longer period shows the sum of its days' visitors
  (visitor-days) and their daily average, never a count of different people.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Sum

from django_pageviews import live, ranking, stats, visitors
from django_pageviews.events import current_day
from django_pageviews.models import PageViewKeyDaily, PageViewTotal, SkippedDaily
from django_pageviews.pipeline_health import RedisUnreachable, draining, pipeline_report
from django_pageviews.stored_tops import StoredTop
from django_pageviews.totals import OBJECT, URL, VIEW
from django_pageviews.wire import TOTAL

from .periods import DEFAULT_DAYS, Period, last_days, standard_periods

TOP_LIMIT = 10  # entries of each most-viewed list
MAX_MODELS = 10  # models whose most viewed objects are listed


@dataclass
class ObjectTop:
    """The most viewed objects of one model."""

    model: str  # its verbose name
    label: str  # app_label.model
    entries: list[tuple[str, int]]  # (the object as text, views)


@dataclass(frozen=True)
class PeriodTotal:
    """A period's written views and visitor-days: each day's unique visitors, summed (for
    one day, that day's unique visitors)."""

    period: Period
    views: int
    visitor_days: int

    @property
    def average_visitors(self) -> float:
        """Unique visitors a day, on average over the period's days."""
        return round(self.visitor_days / self.period.days, 1)


@dataclass
class Dashboard:
    today: date
    period: Period  # of the chart, the lists and the requests not counted
    totals: list[PeriodTotal]  # of today, 7 days, 30 days (+ custom)
    daily: list[tuple[date, int, int]]  # (day, written views, unique visitors) of ``period``
    top_pages: list[tuple[str, int]]
    top_views: list[tuple[str, int]]
    top_objects: list[ObjectTop]
    pending: int  # views recorded, not written yet: the last minutes
    not_counted: list[tuple[str, int]]  # (reason, requests) in ``period``, every process
    process_counters: dict[str, int]  # this process's counters since it started
    health: dict[str, Any] = field(default_factory=dict)


def views_by_day(first: date, last: date) -> Counter[date]:
    """Written views per day from ``first`` to ``last``, from the key rows of URLs."""
    rows = (
        PageViewKeyDaily.objects.filter(kind=URL, day__gte=first, day__lte=last)
        .values_list("day")
        .annotate(n=Sum("views"))
        .order_by()
    )
    return Counter(dict(rows))


def written_and_pending(ranges: list[tuple[date, date]]) -> tuple[Counter[date], int]:
    """(written views per day over ``ranges``, views recorded and not written yet), in one
    live read (live.py): a batch written meanwhile is in exactly one of the two.

    The pending views are this process's buffer and, in async mode, Redis's live total
    (less claims already committed): the views of the last minutes, which a drain writes
    within its interval. Their days are not known without reading every pending field."""

    def db_read() -> Counter[date]:
        by_day: Counter[date] = Counter()
        for first, last in ranges:
            by_day.update(views_by_day(first, last))
        return by_day

    by_day, local, remote = live.read(db_read, [TOTAL])
    return by_day, sum(local.values()) + remote[TOTAL]


def top_pages(period: Period, limit: int = TOP_LIMIT) -> list[tuple[str, int]]:
    stored = StoredTop(URL, None, period.first, period.last)
    return ranking.top(stored, ranking.urls(), limit, period.first, period.last)


def top_views(period: Period, limit: int = TOP_LIMIT) -> list[tuple[str, int]]:
    stored = StoredTop(VIEW, None, period.first, period.last)
    return ranking.top(stored, ranking.view_names(), limit, period.first, period.last)


def viewed_models(limit: int = MAX_MODELS) -> list[ContentType]:
    """Content types with views of their objects, in id order: one seek per type on the
    index (kind, content_type, views) instead of a DISTINCT over every object's row."""
    found: list[ContentType] = []
    after = 0
    rows = PageViewTotal.objects.filter(kind=OBJECT).order_by("content_type_id")
    while len(found) < limit:
        next_id = rows.filter(content_type_id__gt=after).values_list("content_type_id").first()
        if next_id is None:
            break
        after = next_id[0]
        found.append(ContentType.objects.get_for_id(after))
    return found


def top_objects(model: type[Model], period: Period, limit: int = TOP_LIMIT) -> list[Any]:
    """``[(object, views)]``: ``reports.get_popular_objects`` for any range of days."""
    content_type = ContentType.objects.get_for_model(model)
    stored = StoredTop(OBJECT, content_type.pk, period.first, period.last)
    # Deleted objects are dropped after ranking: rank some extra to still fill the list.
    ranked = ranking.top(stored, ranking.objects(model), limit * 2 + 5, period.first, period.last)
    by_pk = {str(o.pk): o for o in model._default_manager.filter(pk__in=[k for k, _ in ranked])}
    return [(by_pk[pk], n) for pk, n in ranked if pk in by_pk][:limit]


def object_tops(period: Period) -> list[ObjectTop]:
    tops = []
    for content_type in viewed_models():
        model = content_type.model_class()
        if model is None:  # a model since removed from the code
            continue
        entries = [(str(obj), n) for obj, n in top_objects(model, period) if n]
        if entries:
            label = f"{content_type.app_label}.{content_type.model}"
            tops.append(ObjectTop(str(model._meta.verbose_name_plural), label, entries))
    return tops


def not_counted(period: Period) -> list[tuple[str, int]]:
    """Requests not counted, by reason, in the period (every process), most first."""
    rows = (
        SkippedDaily.objects.filter(day__gte=period.first, day__lte=period.last)
        .values_list("reason")
        .annotate(n=Sum("requests"))
        .order_by()
    )
    return sorted(((reason, n) for reason, n in rows if n), key=lambda r: (-r[1], r[0]))


def health() -> dict[str, Any]:
    """``pageviews_status``'s report and whether views are being drained; a report with
    only an ``error`` when Redis does not answer (the page still renders)."""
    try:
        report = pipeline_report()
    except RedisUnreachable as exc:
        return {"error": f"Redis is not reachable: {exc}"}
    report["draining"] = draining(report)
    return report


def gather(custom: Period | None = None) -> Dashboard:
    """Every figure of the dashboard; ``custom``: a range asked for in the form, which the
    chart, the lists and the requests not counted then cover (else the last 30 days)."""
    today = current_day()
    periods = standard_periods(today)
    period = custom or last_days(DEFAULT_DAYS, f"Last {DEFAULT_DAYS} days", today)
    window = periods[-1].first
    ranges = [(window, today)]
    if custom is not None:
        periods.append(custom)
        if custom.first < window:  # the days before the 30 days, read once
            ranges.append((custom.first, min(custom.last, window - timedelta(1))))
    by_day, pending = written_and_pending(ranges)
    people: Counter[date] = Counter()
    for first, last in ranges:
        people.update(visitors.by_day(first, last))

    def total(p: Period, counts: Counter[date]) -> int:
        return sum(n for d, n in counts.items() if p.first <= d <= p.last)

    totals = [PeriodTotal(p, total(p, by_day), total(p, people)) for p in periods]
    return Dashboard(
        today=today,
        period=period,
        totals=totals,
        daily=[(day, by_day[day], people[day]) for day in period.each_day()],
        top_pages=top_pages(period),
        top_views=top_views(period),
        top_objects=object_tops(period),
        pending=pending,
        not_counted=not_counted(period),
        process_counters=stats.snapshot(),
        health=health(),
    )
