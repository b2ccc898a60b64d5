from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_pageviews.buffer import buffer
from django_pageviews.conf import conf


class Command(BaseCommand):
    help = (
        "Write buffered page views to the database now: with PAGEVIEW_ASYNC_PROCESSING, "
        "drain the Redis buffer (what a process_pageview_buffer task does); in every "
        "mode, the views buffered in this process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--time-budget",
            type=float,
            default=None,
            help="Stop draining Redis after this many seconds (default: until empty).",
        )
        parser.add_argument(
            "--retry-aside",
            action="store_true",
            help="First write the records the drain set aside because the database "
            "refused them (see pageviews_status), where it now takes them.",
        )

    def handle(
        self, *args: Any, time_budget: float | None, retry_aside: bool = False, **options: Any
    ) -> None:
        written = 0
        if retry_aside:
            written += self._retry_aside()
        if conf.ASYNC_PROCESSING:
            from django_pageviews.drain import drain_redis
            from django_pageviews.redis_client import get_client

            def progress(batches: int, views: int) -> None:
                self.stdout.write(f"\r{batches} batches, {views} views", ending="")
                self.stdout.flush()

            try:
                result = drain_redis(time_budget=time_budget, progress=progress)
            except Exception as exc:
                raise CommandError(f"Draining Redis failed: {exc}") from exc
            finally:
                get_client().close()
            if result.batches:
                self.stdout.write("")
            if result.failed:
                raise CommandError(
                    "Writing a batch from Redis failed (see the log); it stays claimed "
                    "for cleanup_old_buffer_data to retry."
                )
            rate = result.views / result.seconds if result.seconds else 0.0
            self.stdout.write(
                f"Drained {result.views} views from Redis in {result.batches} batches "
                f"({result.seconds:.2f} s, {rate:.0f} views/s)."
            )
            written += result.views
        local = buffer.flush()
        if buffer.last_error is not None:
            raise CommandError(
                f"Writing buffered page views failed: {buffer.last_error}. "
                f"{buffer.pending_count()} remain buffered."
            )
        written += local
        self.stdout.write(f"Wrote {written} page views.")

    def _retry_aside(self) -> int:
        if not conf.ASYNC_PROCESSING:
            raise CommandError(
                "--retry-aside needs PAGEVIEW_ASYNC_PROCESSING: nothing is set aside without Redis."
            )
        from django_pageviews.aside import retry_aside
        from django_pageviews.redis_client import get_client

        try:
            result = retry_aside(get_client())
        except Exception as exc:
            raise CommandError(f"Reading the set-aside records failed: {exc}") from exc
        finally:
            get_client().close()
        self.stdout.write(
            f"Replayed {result.replayed} set-aside records ({result.views} views); "
            f"{result.refused} still refused by the database."
        )
        if result.failed:
            raise CommandError(
                "Writing a set-aside record failed (see the log): the database cannot "
                "write now. Nothing was lost; run this again later."
            )
        return result.views
