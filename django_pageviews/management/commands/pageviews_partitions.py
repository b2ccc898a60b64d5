"""``pageviews_partitions``: raw page views in monthly partitions on PostgreSQL.

Run it once with ``--convert`` to partition the raw table, then daily or monthly (cron,
Celery beat): it makes the next months' partitions before views arrive for them and drops
the months older than ``PAGEVIEW_RAW_RETENTION_DAYS``. Totals are other tables: no count
changes. The work is in ``django_pageviews.partitions``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from django_pageviews import partitions
from django_pageviews.conf import conf
from django_pageviews.management.commands.clean_pageviews import positive_int
from django_pageviews.routers import APP_LABEL


class Command(BaseCommand):
    help = (
        "Keep the raw page views (PostgreSQL) in monthly partitions: --convert the table "
        "once; each run makes the next months' partitions and drops the months older than "
        "PAGEVIEW_RAW_RETENTION_DAYS. Daily totals are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--convert",
            action="store_true",
            help="Partition the raw table first (one transaction; the table is locked "
            "while its rows are copied).",
        )
        parser.add_argument(
            "--ahead",
            default=partitions.DEFAULT_AHEAD,
            help="Months to make partitions for after the current one "
            f"(default: {partitions.DEFAULT_AHEAD}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ahead = positive_int("--ahead", options["ahead"])
        if conf.RAW_PARTITIONS is not True:
            raise CommandError("Set PAGEVIEW_RAW_PARTITIONS = True to partition raw page views.")
        using = partitions.database()
        connection = connections[using]
        if connection.vendor != "postgresql":
            raise CommandError(
                f"Monthly partitions need PostgreSQL; the raw page views are on "
                f"{connection.vendor} (database {using!r})."
            )
        if not partitions.is_partitioned(using):
            if not options["convert"]:
                raise CommandError(
                    "The raw page-view table is not partitioned: run pageviews_partitions "
                    "--convert once."
                )
            self._require_migrations(using)
            copied = partitions.convert(ahead)
            self.stdout.write(f"Partitioned the raw page views by month ({copied} rows copied).")
        report = partitions.maintain(ahead, conf.RAW_RETENTION_DAYS)
        for name in report.created:
            self.stdout.write(f"Created partition {name}.")
        if report.moved_from_default:
            self.stdout.write(
                f"Moved {report.moved_from_default} rows from the default partition into "
                "their months."
            )
        for name in report.dropped:
            self.stdout.write(f"Dropped partition {name} (its views stay in the totals).")
        months = partitions.months(using)
        if months:
            self.stdout.write(
                f"{len(months)} monthly partitions, {months[0]:%Y-%m} to {months[-1]:%Y-%m}."
            )
        if report.in_default:
            self.stderr.write(
                f"{report.in_default} raw page views are in the default partition (months "
                "with no partition of their own); pageviews_partitions moves them when it "
                "makes their month, clean_pageviews deletes old ones."
            )

    def _require_migrations(self, using: str) -> None:
        """The conversion copies the table's columns and indexes as migrated, not its
        foreign keys: all of the app's migrations first (0006 drops the only one)."""
        loader = MigrationLoader(connections[using])
        leaves = loader.graph.leaf_nodes(APP_LABEL)
        if not set(leaves) <= loader.applied_migrations.keys():
            raise CommandError(
                f"Migrate first: python manage.py migrate {APP_LABEL} --database={using}"
            )
