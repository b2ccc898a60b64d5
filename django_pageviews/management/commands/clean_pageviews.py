"""``clean_pageviews``: delete old raw page views, keeping every count.

Counts are read from the daily rollup (``PageViewDaily``), so deleting raw rows loses
detail but no view: the rollup and the processed batch ids are never touched here. The
visitor hashes of days as old go too (visitors.py; the daily visitor counts stay).

The raw table is large and written to all the time, so the deletion goes in chunks of
ids, each in its own short transaction: locks are held for one chunk only, the writers
keep flowing, and an interrupted run keeps what it already deleted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router, transaction
from django.db.models import Count, Max
from django.utils import timezone

from django_pageviews import visitors
from django_pageviews.conf import conf
from django_pageviews.models import PageView

DEFAULT_DAYS = 90  # as in the original 0.2.x command
DEFAULT_CHUNK_SIZE = 5000


def positive_int(option: str, value: object) -> int:
    """``value`` as an integer above zero, or a CommandError that names the option.

    Checked here rather than by argparse: ``call_command(..., days="x")`` skips argparse's
    type conversion, and the command must refuse a bad value whichever way it is called.
    """
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number <= 0:
        raise CommandError(f"{option} must be a positive integer, not {value!r}.")
    return number


def _days(given: object) -> object:
    """--days as given, else the site's retention, else 0.2.x's default."""
    if given is not None:
        return given
    return DEFAULT_DAYS if conf.RAW_RETENTION_DAYS is None else conf.RAW_RETENTION_DAYS


class Command(BaseCommand):
    help = (
        "Delete raw page views older than --days days, in chunks. Daily totals are kept, "
        "so view counts do not change."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            default=None,
            help="Delete raw views older than this many days (default: "
            f"PAGEVIEW_RAW_RETENTION_DAYS, or {DEFAULT_DAYS} if that is None).",
        )
        parser.add_argument(
            "--keep-unique",
            action="store_true",
            help="Keep the newest old view of each (url, content type, object id).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report how many views would be deleted, and delete nothing.",
        )
        parser.add_argument(
            "--chunk-size",
            default=DEFAULT_CHUNK_SIZE,
            help=f"Views deleted per transaction (default: {DEFAULT_CHUNK_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = positive_int("--days", _days(options["days"]))
        chunk_size = positive_int("--chunk-size", options["chunk_size"])
        cutoff = timezone.now() - timedelta(days=days)
        old = PageView.objects.filter(timestamp__lt=cutoff)
        # The rows to clean are fixed at the start: views written meanwhile get higher ids
        # and are left for the next run, which also bounds the last chunk's scan.
        found = old.aggregate(total=Count("id"), last_id=Max("id"))
        total: int = found["total"]
        last_id: int | None = found["last_id"]
        if not options["dry_run"] and (forgotten := visitors.forget_old(days)):
            # Normally gone already (the drain's cleanup keeps them for the batch ids'
            # retention); the daily counts stay.
            self.stdout.write(f"Deleted {forgotten} visitor hashes older than {days} days.")
        if last_id is None:
            self.stdout.write(f"No page views older than {days} days.")
            return
        old = old.filter(id__lte=last_id)
        keep: set[int] = set()
        if options["keep_unique"]:
            # One grouped query; the ids are then skipped chunk by chunk in Python, so the
            # database never gets an id list as long as the number of distinct pages.
            keep = set(
                old.values("url", "content_type", "object_id")
                .annotate(newest=Max("id"))
                .values_list("newest", flat=True)
                .order_by()
            )
        to_delete = total - len(keep)
        if options["dry_run"]:
            self.stdout.write(
                f"Would delete {to_delete} of {total} page views older than {days} days "
                f"(dry run, nothing deleted)."
            )
            return
        deleted = 0
        after = 0
        using = router.db_for_write(PageView)  # where the delete goes (routers.py)
        while True:
            ids = list(
                old.filter(id__gt=after).order_by("id").values_list("id", flat=True)[:chunk_size]
            )
            if not ids:
                break
            after = ids[-1]
            doomed = [i for i in ids if i not in keep]
            if doomed:
                with transaction.atomic(using=using):
                    deleted += PageView.objects.filter(id__in=doomed).delete()[0]
                self.stdout.write(f"Deleted {deleted} of {to_delete}")
        self.stdout.write(
            f"Deleted {deleted} page views older than {days} days; daily totals kept."
        )
