"""What was counted today, as ``pageviews_status`` reports it next to the pipeline's state.

Each figure says where it comes from, because they do not all cover the same views:

- ``views_written_today``: the day's views in the database, from the key totals of URLs
  (the dashboard's read, dashboard/data.py): one index range, never the raw table;
- ``views_pending``: views recorded and not written yet (this process's buffer and, in
  async mode, Redis less committed claims), read with the day's total in one live read so
  that a batch written meanwhile is in exactly one of the two. They are the last minutes'
  views (a drain writes them within its interval): their days are not read;
- ``views_written_last_hour``: raw rows timestamped within the last hour, counted over the
  raw table's timestamp index (one range of the last hour's entries however big the
  table). Only written views, and None with ``PAGEVIEW_STORE_RAW`` off: the daily totals
  have no hours, and the raw rows then stop at the time it was switched off;
- ``unique_visitors_today``: the day's distinct visitors written (visitors.py);
- ``top_pages_today``: the most viewed URLs of the day, written and pending (the read
  behind ``get_popular_urls``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from . import visitors
from .conf import conf
from .dashboard.data import top_pages, written_and_pending
from .dashboard.periods import last_days
from .events import current_day
from .models import PageView

TOP_PAGES = 10
LAST_HOUR = timedelta(hours=1)


def counted_report(now: float | None = None) -> dict[str, Any]:
    """The figures above, as ``pageviews_status`` prints them (``--json`` too)."""
    today = current_day()
    by_day, pending = written_and_pending([(today, today)])
    return {
        "day": today.isoformat(),
        "views_written_today": by_day[today],
        "views_pending": pending,
        "views_written_last_hour": views_last_hour(now),
        "unique_visitors_today": visitors.by_day(today, today)[today],
        "top_pages_today": [
            [url, n] for url, n in top_pages(last_days(1, "Today", today), TOP_PAGES)
        ],
    }


def views_last_hour(now: float | None = None) -> int | None:
    """Raw rows of the last hour, or None when raw rows are not stored."""
    if not conf.STORE_RAW:
        return None
    since = datetime.fromtimestamp(time.time() if now is None else now, UTC) - LAST_HOUR
    if not settings.USE_TZ:  # naive moments in the site's zone, as raw_rows.py stores them
        since = since.astimezone(timezone.get_default_timezone()).replace(tzinfo=None)
    return PageView.objects.filter(timestamp__gte=since).count()
