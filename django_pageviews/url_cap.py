"""At most PAGEVIEW_MAX_NEW_URLS_PER_DAY distinct URLs in the daily totals per day.

A scanner requesting random URLs that a catch-all view answers with 200 would otherwise
add a daily row per URL. Past the cap, views of URLs new that day still count, under one
overflow URL. The cap is checked per batch against the database: two flushers racing may
pass it by a batch's worth, which is the point of a cap, not an exact quota.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date

from . import stats
from .conf import conf
from .events import Target
from .models import PageViewDaily

logger = logging.getLogger(__name__)

OVERFLOW_URL = "(other URLs)"  # not a path: a real path starts with "/"


def cap_new_urls(
    totals: Mapping[tuple[date, Target], int], using: str
) -> tuple[Mapping[tuple[date, Target], int], Counter[tuple[date, str]]]:
    """The totals with URLs past the cap moved to the overflow URL, and how many views were
    moved per day (written with the batch as skipped for "overflow")."""
    overflow: Counter[tuple[date, str]] = Counter()
    cap = conf.MAX_NEW_URLS_PER_DAY
    if not cap:
        return totals, overflow
    urls_by_day: dict[date, set[str]] = defaultdict(set)
    for day, target in totals:
        urls_by_day[day].add(target.url)
    overflowing: set[tuple[date, str]] = set()
    for day, urls in urls_by_day.items():
        rows = PageViewDaily.objects.using(using).filter(day=day)
        known = set(rows.filter(url__in=urls).values_list("url", flat=True).distinct())
        new = sorted(urls - known)
        room = cap - rows.values("url").distinct().count()
        if len(new) > room:
            overflowing.update((day, url) for url in new[max(room, 0) :])
    if not overflowing:
        return totals, overflow
    capped: Counter[tuple[date, Target]] = Counter()
    for (day, target), views in totals.items():
        if (day, target.url) in overflowing:
            overflow[(day, stats.URL_OVERFLOW)] += views
            target = target._replace(url=OVERFLOW_URL)
        capped[(day, target)] += views
    logger.warning(
        "PAGEVIEW_MAX_NEW_URLS_PER_DAY (%d) reached: %d new URLs counted as %r.",
        cap,
        len(overflowing),
        OVERFLOW_URL,
    )
    return capped, overflow
