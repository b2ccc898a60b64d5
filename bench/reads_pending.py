"""The views pending in Redis during bench/reads.py's live reads: ``pages`` distinct pages
(articles and pages not stored yet, 1-5 views each) shipped today as producers ship them,
so that the reads count them too."""

from __future__ import annotations

from collections import Counter

from bench.reads_stored import VIEW_NAME

SHIPMENT = 500  # pages per shipment


def ship_pending(pages: int, articles: int) -> None:
    from bench.common import flush_redis, redis_client
    from django_pageviews.events import PK, Target, current_day
    from django_pageviews.redis.buffer import Shipment
    from django_pageviews.redis.client import get_client
    from django_pageviews.redis.scripts import ship
    from django_pageviews.wire import count_field

    flush_redis(redis_client())
    today = current_day()
    targets = []
    for j in range(pages):
        if j % 4 == 3:  # a page not stored yet
            targets.append(Target(f"/new/{j}/", "new-page", "", "", ""))
        else:
            i = 1 + (j * 7919) % articles
            targets.append(Target(f"/articles/{i}/", VIEW_NAME, "tests.article", PK, str(i)))
    for start in range(0, pages, SHIPMENT):
        part = targets[start : start + SHIPMENT]
        counts = Counter({count_field(today, t): 1 + (k * 7919) % 5 for k, t in enumerate(part)})
        shipment = Shipment(counts, [], [])  # SHIP derives the live totals and day lists
        keys, args = shipment.script_args()
        ship(keys=keys, args=args, client=get_client())
