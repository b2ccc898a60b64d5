"""``pageviews_flush``: ``django_pageviews.flush`` for operators, and replays of parked views."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Sum

from django_pageviews.buffer import buffer
from django_pageviews.conf import conf
from django_pageviews.flushing import flush_report
from django_pageviews.models import ProcessedBatch


class Command(BaseCommand):
    """``django_pageviews.flush`` from the command line (``flushing.flush_report``), with a
    time budget, progress, an exit status, and the operator's replays of parked views."""

    help = (
        "Write buffered page views to the database now, as django_pageviews.flush() does: "
        "with PAGEVIEW_ASYNC_PROCESSING, drain the Redis buffer (what a "
        "process_pageview_buffer task does); in every mode, the views buffered in this "
        "process."
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
        parser.add_argument(
            "--replay-restored",
            nargs="*",
            metavar="GROUP",
            default=None,
            help="First hand the views parked from a Redis restored from an older snapshot "
            "(all groups, or those named; see pageviews_status) back to the drain, to be "
            "written once. With raw events on, views the database already has are left "
            "out; counts-only groups are written whole, so replay one only if you know "
            "its views were not counted before the restore.",
        )

    def handle(
        self,
        *args: Any,
        time_budget: float | None,
        retry_aside: bool = False,
        replay_restored: list[str] | None = None,
        **options: Any,
    ) -> None:
        written = 0
        if retry_aside:
            written += self._retry_aside()
        if replay_restored is not None:
            written += self._replay_restored(replay_restored or None)

        def progress(batches: int, views: int) -> None:
            self.stdout.write(f"\r{batches} batches, {views} views", ending="")
            self.stdout.flush()

        try:
            flushed = flush_report(time_budget=time_budget, progress=progress)
        except Exception as exc:
            raise CommandError(f"Draining Redis failed: {exc}") from exc
        finally:
            if conf.ASYNC_PROCESSING:
                from django_pageviews.redis.client import close_client

                close_client()
        result = flushed.drained
        if result is not None:
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
        if flushed.local_error is not None:
            raise CommandError(
                f"Writing buffered page views failed: {flushed.local_error}. "
                f"{buffer.pending_count()} remain buffered."
            )
        written += flushed.written
        self.stdout.write(f"Wrote {written} page views.")

    def _retry_aside(self) -> int:
        if not conf.ASYNC_PROCESSING:
            raise CommandError(
                "--retry-aside needs PAGEVIEW_ASYNC_PROCESSING: nothing is set aside without Redis."
            )
        from django_pageviews.redis.client import close_client, get_client
        from django_pageviews.redis.retry_aside import retry_aside

        try:
            result = retry_aside(get_client())
        except Exception as exc:
            raise CommandError(f"Reading the set-aside records failed: {exc}") from exc
        finally:
            close_client()  # closed and forgotten: a closed cluster client is unusable
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

    def _replay_restored(self, groups: list[str] | None) -> int:
        """Replayed groups become stale claims, written here at once by cleanup."""
        if not conf.ASYNC_PROCESSING:
            raise CommandError(
                "--replay-restored needs PAGEVIEW_ASYNC_PROCESSING: nothing is parked "
                "without Redis."
            )
        from django_pageviews.redis.client import close_client
        from django_pageviews.redis.drain import cleanup
        from django_pageviews.redis.restore import replay_restored

        try:
            batch_ids = replay_restored(groups)
            result = cleanup(stale_after=0)
        except Exception as exc:
            raise CommandError(f"Replaying restored views failed: {exc}") from exc
        finally:
            close_client()  # closed and forgotten: a closed cluster client is unusable
        if result.failed:
            raise CommandError(
                "Writing a replayed batch failed (see the log): it stays claimed for "
                "cleanup_old_buffer_data. Nothing was lost."
            )
        written = ProcessedBatch.objects.filter(batch_id__in=batch_ids).aggregate(n=Sum("views"))
        views: int = written["n"] or 0
        self.stdout.write(f"Replayed restored views: {len(batch_ids)} batches, {views} views.")
        return views
