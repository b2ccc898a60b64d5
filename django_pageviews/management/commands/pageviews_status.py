"""``pageviews_status``: the pipeline's state and what was counted today, as text or JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_pageviews.counted import counted_report
from django_pageviews.pipeline_health import RedisUnreachable, pipeline_report


class Command(BaseCommand):
    help = (
        "Show the page-view pipeline: buffered views, claims, last flush, records set "
        "aside (replayed by pageviews_flush --retry-aside), views parked from a Redis "
        "restored from an older snapshot (redis.restored_groups, replayed by "
        "pageviews_flush --replay-restored), shipments of unknown outcome kept at "
        "shutdown, and requests not counted today (every process) by reason; and what was "
        "counted (counted): views written today, views pending (recorded, not written "
        "yet: the last minutes), views written in the last hour (raw rows; null without "
        "PAGEVIEW_STORE_RAW), unique visitors today and the top pages today."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        try:
            report = {"counted": counted_report(), **pipeline_report()}
        except RedisUnreachable as exc:
            raise CommandError(f"Redis is not reachable: {exc}") from exc
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        else:
            self._print(report)

    def _print(self, report: dict[str, Any], indent: str = "") -> None:
        for key, value in report.items():
            if isinstance(value, list) and all(isinstance(v, list) for v in value):
                self.stdout.write(f"{indent}{key}:" + ("" if value else " none"))
                for row in value:  # (name, number) pairs: the number first, aligned
                    self.stdout.write(f"{indent}  {row[-1]:>8}  {row[0]}")
            elif isinstance(value, dict):
                self.stdout.write(f"{indent}{key}:")
                self._print(value, indent + "  ")
            else:
                self.stdout.write(f"{indent}{key}: {value}")
