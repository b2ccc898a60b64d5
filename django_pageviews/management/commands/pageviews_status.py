"""``pageviews_status``: the pipeline's state and what was counted today, as text or JSON;
or the metrics in Prometheus's text format, for node-exporter's textfile collector."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_pageviews.counted import counted_report
from django_pageviews.metrics.figures import metrics_report, multiprocess_directory
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
        "PAGEVIEW_STORE_RAW), unique visitors today and the top pages today; and the "
        "metrics (metrics: docs/howto/monitoring.md gives their JSON schema)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")
        parser.add_argument(
            "--prometheus",
            action="store_true",
            help="Print only the metrics, in Prometheus's text format (a store that does "
            "not answer leaves its figures out). Process counters only with "
            "PROMETHEUS_MULTIPROC_DIR: those of every process that writes there.",
        )

    def handle(
        self, *args: Any, as_json: bool = False, prometheus: bool = False, **options: Any
    ) -> None:
        if prometheus:
            self.stdout.write(prometheus_text(), ending="")
            return
        try:
            report = {
                "counted": counted_report(),
                **pipeline_report(),
                "metrics": metrics_report(multiprocess_directory()),
            }
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


def prometheus_text() -> str:
    """The collector's text; a command's own process counters are not the site's, so
    they are left out unless the multiprocess files sum every process's."""
    try:
        from django_pageviews.metrics.collector import PageViewsCollector, exposition
    except ImportError as exc:  # the prometheus extra is not installed
        raise CommandError(
            "--prometheus needs prometheus-client: pip install 'django-pageviews[prometheus]'."
        ) from exc
    collector = PageViewsCollector(process_counters=multiprocess_directory() is not None)
    return exposition(collector).decode()
