from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from example_asgi.blog.models import Article

TOPICS = [
    "Counting page views without slowing pages",
    "Why batches beat one insert per view",
    "Exactly once: batch ids and transactions",
    "Privacy-safe unique visitors",
    "Shipping events to Redis from the event loop",
]


class Command(BaseCommand):
    help = "Create the demo articles (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=len(TOPICS))

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        created = 0
        for i in range(count):
            title = TOPICS[i] if i < len(TOPICS) else f"Demo article {i + 1}"
            _, new = Article.objects.get_or_create(
                slug=f"article-{i + 1}",
                defaults={"title": title, "body": f"{title}. A demo article."},
            )
            created += new
        self.stdout.write(f"{created} articles created, {count - created} already there.")
