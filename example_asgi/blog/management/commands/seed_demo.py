from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from django_pageviews.events import current_day
from example_asgi.blog.history import HISTORY, record_history
from example_asgi.blog.models import Article

TOPICS = [
    "Counting page views without slowing pages",
    "Why batches beat one insert per view",
    "Exactly once: batch ids and transactions",
    "Privacy-safe unique visitors",
    "Shipping events to Redis from the event loop",
]
# The demo's admin login. A demo only: never a password to keep on a real site.
DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"


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
            help=f"Write {len(next(iter(HISTORY.values())))} days of views of the first "
            f"{len(HISTORY)} articles, as drained batches (once: a re-run writes nothing).",
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
                f"History: wrote {written} page views of the last days to the database."
                if written
                else "History: already written today (nothing new)."
            )

    def _superuser(self) -> None:
        users = get_user_model()
        if users.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write(
                f"Demo superuser {DEMO_USERNAME!r} already there (password unchanged)."
            )
            return
        users.objects.create_superuser(DEMO_USERNAME, "", DEMO_PASSWORD)
        self.stdout.write(
            f"Demo superuser created: {DEMO_USERNAME} / {DEMO_PASSWORD} (demo only)."
        )
