from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Sum

from django_pageviews import stats
from django_pageviews.buffer import buffer
from django_pageviews.conf import conf
from django_pageviews.events import current_day
from django_pageviews.models import ProcessedBatch, SkippedDaily, UnsettledShipment


class Command(BaseCommand):
    help = (
        "Show the page-view pipeline: buffered views, claims, last flush, records set "
        "aside (replayed by pageviews_flush --retry-aside), views parked from a Redis "
        "restored from an older snapshot (redis.restored_groups, replayed by "
        "pageviews_flush --replay-restored), shipments of unknown outcome kept at "
        "shutdown, and requests not counted today (every process) by reason."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        report: dict[str, Any] = {"async_processing": conf.ASYNC_PROCESSING}
        if conf.ASYNC_PROCESSING:
            from django_pageviews.redis_aside import aside_status
            from django_pageviews.redis_buffer import status
            from django_pageviews.redis_client import get_client

            try:
                report["redis"] = status(get_client())
                report["set_aside"] = aside_status(get_client())
            except Exception as exc:
                raise CommandError(f"Redis is not reachable: {exc}") from exc
            finally:
                get_client().close()
        last = ProcessedBatch.objects.order_by("-created_at").first()
        report["last_batch_written_at"] = last.created_at.isoformat() if last else None
        today = SkippedDaily.objects.filter(day=current_day())
        report["not_counted_today"] = dict(today.values_list("reason", "requests"))
        unsettled = UnsettledShipment.objects.aggregate(n=Count("pk"), views=Sum("views"))
        report["unsettled_shipments"] = {
            "shipments": unsettled["n"],
            "views": unsettled["views"] or 0,
        }
        report["this_process"] = {"buffered": buffer.pending_count(), **stats.snapshot()}
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        else:
            self._print(report)

    def _print(self, report: dict[str, Any], indent: str = "") -> None:
        for key, value in report.items():
            if isinstance(value, dict):
                self.stdout.write(f"{indent}{key}:")
                self._print(value, indent + "  ")
            else:
                self.stdout.write(f"{indent}{key}: {value}")
