"""Views of one URL or one view name per day, and over a period, live.

``reports.py`` answers these questions for an object; the stats API and the public counter
ask them of URLs and view names too. The stored side is the key's own day rows
(``PageViewKeyDaily``, one indexed range per key: never the raw rows, never the daily rows
of other targets), the pending side the per-day lists of toplists.py, read with it in one
consistent live read, as ``reports._object_read`` does for objects.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from . import live
from .events import Target, stored_url
from .models import PageViewKeyDaily
from .paths import normalize_url
from .reports import day_range
from .toplists import SEP, split_name
from .totals import URL, VIEW, key_hash


def _member(kind: str, value: str) -> str:
    """The key as stored and listed: a URL under the rule it was tracked by."""
    return stored_url(normalize_url(value)) if kind == URL else value


def _matches(kind: str, member: str, target: Target) -> bool:
    return (target.url if kind == URL else target.view_name) == member


def _read(kind: str, value: str, first: date | None, last: date | None) -> Counter[date]:
    """Views of the key per day from ``first`` to ``last`` (None: open), stored and
    pending; days without views are left out."""
    member = _member(kind, value)
    rows = PageViewKeyDaily.objects.filter(key_hash=key_hash(kind, None, member))
    if first is not None:
        rows = rows.filter(day__gte=first)
    if last is not None:
        rows = rows.filter(day__lte=last)
    by_day = rows.values_list("day", "views")  # one row per day and key: no sum

    stored, pending = live.read_lists(
        kind + SEP, first, last, 0, [(kind, member)], lambda _: dict(by_day)
    )
    views: Counter[date] = Counter(stored)
    for name in pending.names():
        listed, day = split_name(name)
        if listed == kind:
            views[day] += pending.views(name, member) or 0
    for (day, target), n in pending.local.items():
        in_range = (first is None or day >= first) and (last is None or day <= last)
        if in_range and _matches(kind, member, target):
            views[day] += n
    return views


def _daily(kind: str, value: str, days: int) -> dict[date, int]:
    first, last = day_range(days)
    assert first is not None
    views = _read(kind, value, first, last)
    return {first + timedelta(days=i): views[first + timedelta(days=i)] for i in range(days)}


def get_url_daily_views(url: str, days: int = 30) -> dict[date, int]:
    """``{day: views}`` of ``url`` for each of the last ``days`` days, oldest first, zeros
    included (``PageView.get_daily_views`` for a URL)."""
    return _daily(URL, url, days)


def get_view_name_daily_views(view_name: str, days: int = 30) -> dict[date, int]:
    """``{day: views}`` of a named view for each of the last ``days`` days."""
    return _daily(VIEW, view_name, days)


def get_url_views_by_period(
    url: str,
    days: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> int:
    """Views of ``url`` in the last ``days`` days, or between two dates (inclusive)."""
    return sum(_read(URL, url, *day_range(days, start_date, end_date)).values())


def get_view_name_views_by_period(
    view_name: str,
    days: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> int:
    """Views of a named view in the last ``days`` days, or between two dates."""
    return sum(_read(VIEW, view_name, *day_range(days, start_date, end_date)).values())
