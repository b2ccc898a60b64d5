from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from django_pageviews.events import Target, current_day
from django_pageviews.objects import model_label
from django_pageviews.storage import DayTarget, write_batch
from example_asgi.blog.demo_data import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    HISTORY,
    HISTORY_BATCH_PREFIX,
    HISTORY_DAYS,
    TOPICS,
    history_day,
)
from example_asgi.blog.models import Article

VIEW_NAME = "article-detail"


def article_target(slug: str) -> Target:
    """What the middleware records for an article page (its object found by slug)."""
    url = reverse(VIEW_NAME, kwargs={"slug": slug})
    return Target(url, VIEW_NAME, model_label(Article), "slug", slug)


def record_history(today: date) -> int:
    """Write HISTORY as the drain writes views (``write_batch``: daily and key totals and a
    ``ProcessedBatch`` id), one batch per day, so that every read the pages and the
    dashboard make sees them as real views. The views written: 0 on a re-run the same
    day (the batch ids are replays)."""
    days: dict[date, Counter[DayTarget]] = {}
    for slug, series in HISTORY.items():
        for index, views in enumerate(series):
            if views:
                day = history_day(today, index)
                days.setdefault(day, Counter())[(day, article_target(slug))] += views
    return sum(
        write_batch(f"{HISTORY_BATCH_PREFIX}{day.isoformat()}", [], totals)
        for day, totals in sorted(days.items())
    )


class Command(BaseCommand):
    help = (
        "Create the demo articles and the demo superuser (admin / admin); with --history, "
        "two weeks of views for the dashboard. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=len(TOPICS))
        parser.add_argument(
            "--history",
            action="store_true",
            help=f"Write {HISTORY_DAYS} days of views of the first {len(HISTORY)} articles, "
            "as drained batches (once a day: a re-run the same day writes nothing).",
        )

    def handle(self, *args: Any, count: int, history: bool = False, **options: Any) -> None:
        created = 0
        for i in range(count):
            title = TOPICS[i] if i < len(TOPICS) else f"Demo article {i + 1}"
            _, new = Article.objects.get_or_create(
                slug=f"article-{i + 1}",
                defaults={"title": title, "body": f"{title}. A demo article."},
            )
            created += new
        self.stdout.write(f"{created} articles created, {count - created} already there.")
        self._superuser()
        if history:
            written = record_history(current_day())
            self.stdout.write(
                f"History: wrote {written} page views of the last {HISTORY_DAYS} days to "
                "the database."
                if written
                else "History: already written today."
            )

    def _superuser(self) -> None:
        users = get_user_model()
        if users.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write(f"Demo superuser {DEMO_USERNAME!r} already there.")
            return
        users.objects.create_superuser(DEMO_USERNAME, "", DEMO_PASSWORD)
        self.stdout.write(f"Demo superuser created: {DEMO_USERNAME} / {DEMO_PASSWORD} (demo only).")
