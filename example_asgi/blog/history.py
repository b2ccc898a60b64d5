"""Two weeks of views for the demo's articles, so the dashboard and the daily series have
something to draw on a fresh database (``seed_demo --history``).

Written as the drain writes a batch (``storage.write_batch``: daily totals, key totals,
one ``ProcessedBatch`` id per day), not as made-up rows: every read the pages and the
dashboard make sees them as real views. One batch id per day makes a re-run a no-op: a
replayed batch id writes nothing. The browser tests check the dashboard against these
figures, and ``docs/images/dashboard.png`` is drawn from them.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from django.urls import reverse

from django_pageviews.events import Target
from django_pageviews.objects import model_label
from django_pageviews.storage import write_batch

from .models import Article

# Views per article for each of the last len(series) days, oldest first, today last.
HISTORY: dict[str, tuple[int, ...]] = {
    "article-1": (4, 6, 5, 9, 7, 12, 15, 11, 9, 14, 18, 16, 21, 8),
    "article-2": (2, 3, 3, 4, 6, 5, 4, 7, 8, 6, 9, 11, 10, 5),
    "article-3": (1, 0, 2, 3, 2, 4, 3, 2, 5, 4, 3, 6, 4, 2),
    "article-4": (0, 1, 1, 0, 2, 1, 3, 2, 1, 2, 4, 3, 2, 1),
    "article-5": (0, 0, 1, 1, 0, 2, 1, 1, 2, 1, 0, 2, 3, 1),
}
BATCH_PREFIX = "demo-history-"
VIEW_NAME = "article-detail"


def day_of(today: date, series: tuple[int, ...], index: int) -> date:
    """The day of ``series[index]``: the last entry is ``today``."""
    return today - timedelta(days=len(series) - 1 - index)


def article_target(slug: str) -> Target:
    """What the middleware records for an article page (found by its slug)."""
    url = reverse(VIEW_NAME, kwargs={"slug": slug})
    return Target(url, VIEW_NAME, model_label(Article), "slug", slug)


def daily_totals(today: date) -> dict[date, Counter[Target]]:
    """{day: {target: views}} of HISTORY, days with no view left out."""
    days: dict[date, Counter[Target]] = {}
    for slug, series in HISTORY.items():
        for index, views in enumerate(series):
            if views:
                day = day_of(today, series, index)
                days.setdefault(day, Counter())[article_target(slug)] += views
    return days


def record_history(today: date) -> int:
    """Write HISTORY as one drained batch per day; the views written (0 on a re-run)."""
    written = 0
    for day, targets in sorted(daily_totals(today).items()):
        totals = Counter({(day, target): views for target, views in targets.items()})
        written += write_batch(f"{BATCH_PREFIX}{day.isoformat()}", [], totals)
    return written
