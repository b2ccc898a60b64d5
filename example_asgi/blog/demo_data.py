"""What ``seed_demo`` writes: the articles, the demo's admin login and two weeks of views.

Plain data, no model import: the browser tests (which run under the test suite's
settings, without the blog app) read the login and the history from here and check the
dashboard against them; ``docs/images/dashboard.png`` is drawn from the same history.
"""

from __future__ import annotations

from datetime import date, timedelta

TOPICS = [
    "Counting page views without slowing pages",
    "Why batches beat one insert per view",
    "Exactly once: batch ids and transactions",
    "Privacy-safe unique visitors",
    "Shipping events to Redis from the event loop",
]

# The demo's admin login. A demo only: never a password to keep on a real site.
DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"

# Views per article (by slug) for each of the last 14 days, oldest first, today last.
HISTORY: dict[str, tuple[int, ...]] = {
    "article-1": (4, 6, 5, 9, 7, 12, 15, 11, 9, 14, 18, 16, 21, 8),
    "article-2": (2, 3, 3, 4, 6, 5, 4, 7, 8, 6, 9, 11, 10, 5),
    "article-3": (1, 0, 2, 3, 2, 4, 3, 2, 5, 4, 3, 6, 4, 2),
    "article-4": (0, 1, 1, 0, 2, 1, 3, 2, 1, 2, 4, 3, 2, 1),
    "article-5": (0, 0, 1, 1, 0, 2, 1, 1, 2, 1, 0, 2, 3, 1),
}
HISTORY_DAYS = 14
# One drained batch per day, under this id and the day: a re-run replays it, writing nothing.
HISTORY_BATCH_PREFIX = "demo-history-"


def history_day(today: date, index: int) -> date:
    """The day of ``HISTORY[slug][index]``: the last entry is ``today``."""
    return today - timedelta(days=HISTORY_DAYS - 1 - index)
