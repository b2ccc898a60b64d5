from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_pageviews.buffer import buffer
from django_pageviews.recorder import flush


class Command(BaseCommand):
    help = "Write the page views buffered in this process to the database now."

    def handle(self, *args: Any, **options: Any) -> None:
        written = flush()
        if buffer.last_error is not None:
            raise CommandError(
                f"Wrote {written} page views, then failed: {buffer.last_error}. "
                f"{buffer.pending_count()} remain buffered."
            )
        self.stdout.write(f"Wrote {written} page views.")
