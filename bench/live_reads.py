"""How long live reads take with a large backlog pending in Redis.

    .venv/bin/python bench/live_reads.py

Ships 200,000 distinct pages (1-5 views each, as producers ship them: count fields,
dimensions and day lists) to the benchmarks' Redis database, stores 500 pages in a
temporary SQLite database, then times each read (median of 5) and prints a Markdown table.
Before the day lists, ``get_popular_urls`` read every pending field: 6.8 s here.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

PAGES = 200_000
REPEATS = 5


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pageviews-live-") as tmp:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            BENCH_DATABASE_URL=f"sqlite:///{tmp}/live.sqlite3",
            BENCH_TRACKING="redis",
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(measure())


def measure() -> str:
    from bench.common import flush_redis, fmt, markdown_table, median, redis_client
    from django_pageviews.events import Target, current_day
    from django_pageviews.models import PageView
    from django_pageviews.redis_buffer import Shipment
    from django_pageviews.redis_client import get_client
    from django_pageviews.redis_scripts import ship
    from django_pageviews.storage import write_batch
    from django_pageviews.toplists import list_entries
    from django_pageviews.wire import count_field, dimensions

    client = redis_client()
    flush_redis(client)
    today = current_day()
    pages = [(today, Target(f"/articles/{i}/", "article", "", "", "")) for i in range(PAGES)]
    write_batch(uuid.uuid4().hex, [], {pages[i]: 3 + i % 5 for i in range(0, PAGES, 400)})
    shipping = time.perf_counter()
    for start in range(0, PAGES, 500):  # shipments of 500 distinct pages, as producers send
        part = pages[start : start + 500]
        counts = Counter({count_field(d, t): 1 + (i * 7919) % 5 for i, (d, t) in enumerate(part)})
        dims: Counter[str] = Counter()
        for (_, target), n in zip(part, counts.values(), strict=True):
            for dim in dimensions(target):
                dims[dim] += n
        shipment = Shipment(counts, dims, [], [], lists=list_entries(counts.items()))
        keys, args = shipment.script_args()
        ship(keys=keys, args=args, client=get_client())
    ship_ms = (time.perf_counter() - shipping) * 1000 / (PAGES / 500)
    memory = client.info("memory")["used_memory"]

    reads = {
        "get_popular_urls(limit=10)": lambda: PageView.get_popular_urls(limit=10),
        "get_popular_urls(limit=10, days=7)": lambda: PageView.get_popular_urls(10, days=7),
        "get_popular_view_names(limit=5)": lambda: PageView.get_popular_view_names(limit=5),
        "get_view_count(url=...)": lambda: PageView.get_view_count(url="/articles/400/"),
        "get_view_count()": lambda: PageView.get_view_count(),
    }
    rows = []
    for name, read in reads.items():
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            read()
            times.append((time.perf_counter() - started) * 1000)
        rows.append([name, fmt(median(times), 1)])
    rows.append(["SHIP, 500 distinct pages (mean)", fmt(ship_ms, 1)])
    flush_redis(client)
    client.close()
    return (
        markdown_table(["read, 200,000 distinct pages pending", "ms (median of 5)"], rows)
        + f"\n\nRedis used_memory with the backlog: {memory / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
