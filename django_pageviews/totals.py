"""Views per key (URL, view name, object), per day and all time, kept with the daily rows.

A count or a most-viewed list is asked about a key, while ``PageViewDaily`` has one row per
day and *target* (object, URL and view name together): summing a key's targets over every
day reads the whole history. So the drain also adds each batch's views to
``PageViewKeyDaily`` (per day and key) and ``PageViewTotal`` (per key, all time), in the
same transaction and with the same adding upsert as the daily rows: at every commit, each
key's rows are exactly the sums of its daily rows, whatever is replayed or rolled back.
``rebuild`` computes them from the daily rows (migration 0006 with its historical models, or
after an edit by hand).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db import transaction
from django.db.models import F, Model, Sum

from .models import TARGET_HASH_LENGTH, PageViewDaily, PageViewKeyDaily, PageViewTotal
from .upsert import upsert_adding

URL = "u"
VIEW = "v"
OBJECT = "o"

Key = tuple[str, int | None, str]  # (kind, content type id, value)
# (day, target_hash, content_type_id, object_id, url, view_name, views): upsert.RollupRow
RollupRow = tuple[date, str, int | None, str, str, str, int]


def key_hash(kind: str, content_type_id: int | None, value: str) -> str:
    raw = f"{kind}\0{content_type_id or ''}\0{value}".encode()
    return hashlib.blake2b(raw, digest_size=TARGET_HASH_LENGTH // 2).hexdigest()


def keys_of(content_type_id: int | None, object_id: str, url: str, view_name: str) -> list[Key]:
    """The keys a view of this target counts for."""
    keys: list[Key] = [(URL, None, url)]
    if view_name:
        keys.append((VIEW, None, view_name))
    if content_type_id is not None:
        keys.append((OBJECT, content_type_id, object_id))
    return keys


def add(rollups: Sequence[RollupRow], using: str) -> None:
    """Add the daily rows just upserted to their keys' day and all-time rows."""
    by_day: Counter[tuple[date, Key]] = Counter()
    for day, _, content_type_id, object_id, url, view_name, views in rollups:
        for key in keys_of(content_type_id, object_id, url, view_name):
            by_day[(day, key)] += views
    _add(by_day, using)


def withdraw(day: date, target: str, n: int, using: str) -> int:
    """Before the daily row (``day``, ``target``) loses up to ``n`` views (storage.py's
    ``_withdraw``, which stops at 0): take off its keys what it will lose, and return
    that amount. The row is locked first, so it holds that much when the caller updates."""
    row = (
        PageViewDaily.objects.using(using)
        .select_for_update()
        .filter(day=day, target_hash=target)
        .values_list("content_type_id", "object_id", "url", "view_name", "views")
        .first()
    )
    if row is None or not min(n, row[-1]):
        return 0
    taken = min(n, row[-1])
    for key in keys_of(*row[:-1]):
        hashed = key_hash(*key)
        PageViewKeyDaily.objects.using(using).filter(day=day, key_hash=hashed).update(
            views=F("views") - taken
        )
        PageViewTotal.objects.using(using).filter(key_hash=hashed).update(views=F("views") - taken)
    return taken


def rebuild(using: str, days: Iterable[date] | None = None, apps: Apps = global_apps) -> None:
    """Recompute the key rows from ``PageViewDaily``: all days, or only ``days`` (whose
    key rows are replaced; the all-time rows are recomputed in full). One day at a time,
    in one transaction per day, so memory holds one day's keys.

    ``apps``: the registry to take the three models from; a migration passes its own
    (historical models), so that it keeps working when the models change later."""
    daily = apps.get_model("django_pageviews", "PageViewDaily")
    key_daily = apps.get_model("django_pageviews", "PageViewKeyDaily")
    total = apps.get_model("django_pageviews", "PageViewTotal")
    if days is None:
        key_daily._default_manager.using(using).all().delete()
        days = (
            daily._default_manager.using(using)
            .order_by("day")
            .values_list("day", flat=True)
            .distinct()
        )
    for day in list(days):
        with transaction.atomic(using=using):
            key_daily._default_manager.using(using).filter(day=day).delete()
            _upsert(key_daily, _day_keys(daily, day, using), using, dated=True)
    with transaction.atomic(using=using):
        total._default_manager.using(using).all().delete()
        grouped = (
            key_daily._default_manager.using(using)
            .values_list("kind", "content_type_id", "value", "key_hash")
            .annotate(total=Sum("views"))
            .order_by()
        )
        rows = [(h, kind, ct, value, n) for kind, ct, value, h, n in grouped.iterator() if n]
        _upsert(total, rows, using, dated=False)


def _day_keys(daily: type[Model], day: date, using: str) -> list[tuple[Any, ...]]:
    rows = daily._default_manager.using(using).filter(day=day, views__gt=0).order_by()
    sums: Counter[Key] = Counter()
    for url, n in rows.values_list("url").annotate(n=Sum("views")):
        sums[(URL, None, url)] += n
    for view_name, n in (
        rows.exclude(view_name="").values_list("view_name").annotate(n=Sum("views"))
    ):
        sums[(VIEW, None, view_name)] += n
    objects = rows.filter(content_type__isnull=False).values_list("content_type_id", "object_id")
    for ct, object_id, n in objects.annotate(n=Sum("views")):
        sums[(OBJECT, ct, object_id)] += n
    return [(day, key_hash(*key), *key, n) for key, n in sums.items() if n]


def _add(by_day: Counter[tuple[date, Key]], using: str) -> None:
    all_time: Counter[Key] = Counter()
    day_rows = []
    for (day, key), views in by_day.items():
        all_time[key] += views
        day_rows.append((day, key_hash(*key), *key, views))
    _upsert(PageViewKeyDaily, day_rows, using, dated=True)
    totals = [(key_hash(*key), *key, n) for key, n in all_time.items()]
    _upsert(PageViewTotal, totals, using, dated=False)


_COLUMNS = ("key_hash", "kind", "content_type_id", "value", "views")


def _upsert(model: type[Model], rows: Sequence[tuple[Any, ...]], using: str, dated: bool) -> None:
    """Insert ``rows`` (``day`` first if ``dated``, then ``_COLUMNS``), adding the
    views to rows that exist, keyed by the key hash (and day)."""
    key = ("day", "key_hash") if dated else ("key_hash",)
    upsert_adding(model, key, (("day",) if dated else ()) + _COLUMNS, rows, using)
