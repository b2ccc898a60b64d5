"""How fast ``drain.drain_redis`` moves views from Redis into the database.

    .venv/bin/python bench/flush_rate.py

For each case (SQLite file or PostgreSQL database ``bench``; PAGEVIEW_BATCH_SIZE 100 or
1000; PAGEVIEW_STORE_RAW on or off) a subprocess fills Redis database 12 with 200,000
views of 2,000 pages, shipped as the batchers ship them (``producer.build_shipment`` and
the ``ship`` script, 500 views per shipment), then times ``drain_redis(None)`` and checks
that the database holds every view.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import product
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import (  # noqa: E402
    POSTGRES_URL,
    PYTHON,
    ROOT,
    fmt,
    markdown_table,
    subprocess_env,
    undisturbed,
    wait_for_quiet_machine,
)

VIEWS = int(os.environ.get("BENCH_VIEWS", 200_000))
PAGES = 2_000
SHIPMENT = 500
DATABASES = ("sqlite", "postgresql")
BATCH_SIZES = (100, 1000)
STORE_RAW = (True, False)


def run_case() -> dict[str, Any]:
    """In the subprocess: Django is configured by the environment the parent set."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.common import flush_redis, realistic_event
    from django_pageviews import drain
    from django_pageviews.conf import conf
    from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
    from django_pageviews.producer import build_shipment
    from django_pageviews.redis_client import get_client
    from django_pageviews.redis_scripts import ship

    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":
        tables = [m._meta.db_table for m in (PageView, PageViewDaily, ProcessedBatch)]
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
    client = get_client()
    flush_redis(client)
    now = time.time()
    fill_started = time.perf_counter()
    for start in range(0, VIEWS, SHIPMENT):
        events = [realistic_event(i % PAGES, now) for i in range(start, start + SHIPMENT)]
        keys, args = build_shipment(events, Counter()).script_args()
        ship(keys=keys, args=args, client=client)
    fill_seconds = time.perf_counter() - fill_started
    memory = client.memory_usage("{" + conf.KEY_PREFIX + "}:pending", samples=0) or 0
    memory += client.memory_usage("{" + conf.KEY_PREFIX + "}:events", samples=0) or 0

    started = time.perf_counter()
    result = drain.drain_redis(None)
    seconds = time.perf_counter() - started

    daily = sum(PageViewDaily.objects.values_list("views", flat=True))
    out = {
        "vendor": connection.vendor,
        "batch_size": conf.BATCH_SIZE,
        "store_raw": conf.STORE_RAW,
        "drained": result.views,
        "batches": result.batches,
        "seconds": seconds,
        "daily_views": daily,
        "daily_rows": PageViewDaily.objects.count(),
        "raw_rows": PageView.objects.count(),
        "redis_bytes": memory,
        "fill_seconds": fill_seconds,
    }
    # What may stay: shipment ids (expire after an hour), counters, the claim sequence.
    prefix = "{" + conf.KEY_PREFIX + "}:"
    bookkeeping = tuple(prefix + name for name in ("sent:", "counters", "seq"))
    left = [k for k in client.scan_iter(prefix + "*") if not k.startswith(bookkeeping)]
    out["left_keys"] = left[:5]
    flush_redis(client)
    client.close()
    return out


def main() -> None:
    rows: list[list[object]] = []
    discarded = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pageviews-flush-") as tmp:
        for n, (vendor, batch_size, raw) in enumerate(product(DATABASES, BATCH_SIZES, STORE_RAW)):
            url = POSTGRES_URL if vendor == "postgresql" else f"sqlite:///{tmp}/case{n}.sqlite3"
            env = subprocess_env(
                BENCH_TRACKING="redis",
                BENCH_DATABASE_URL=url,
                PAGEVIEW_BATCH_SIZE=json.dumps(batch_size),
                PAGEVIEW_STORE_RAW=json.dumps(raw),
                BENCH_VIEWS=str(VIEWS),
            )
            name = f"{vendor}/{batch_size}/{'raw' if raw else 'counts'}"

            def case(env: dict[str, str] = env, name: str = name) -> dict[str, Any]:
                done = subprocess.run(
                    [PYTHON, __file__, "--case"], cwd=ROOT, env=env, capture_output=True, text=True
                )
                if done.returncode:
                    raise SystemExit(f"case {name} failed:\n{done.stderr}")
                result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
                return result

            wait_for_quiet_machine()
            r, thrown = undisturbed(case, name)
            discarded += thrown
            ok = r["daily_views"] == VIEWS and r["raw_rows"] == (VIEWS if raw else 0)
            ok = ok and r["drained"] == VIEWS and not r["left_keys"]
            rows.append(
                [
                    vendor,
                    fmt(batch_size),
                    "on" if raw else "off",
                    fmt(r["batches"]),
                    fmt(r["seconds"], 2),
                    fmt(VIEWS / r["seconds"]),
                    fmt(r["redis_bytes"] / VIEWS, 1),
                    fmt(r["daily_views"]),
                    fmt(r["raw_rows"]),
                    "yes" if ok else f"NO {r}",
                ]
            )
            print(f"{rows[-1][:6]}", file=sys.stderr, flush=True)
    print(
        f"{VIEWS:,} views of {PAGES:,} pages (one day), shipped {SHIPMENT} per ship script "
        f"call; drain_redis(None) timed; total time {time.monotonic() - started:.0f} s; "
        f"{discarded} disturbed runs thrown away (another process used the Redis database)."
    )
    print()
    headers = [
        "database",
        "BATCH_SIZE",
        "STORE_RAW",
        "batches",
        "seconds",
        "views/s",
        "Redis bytes/view before drain",
        "views in DB (daily sum)",
        "raw rows",
        "all there",
    ]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    if sys.argv[1:] == ["--case"]:
        print(json.dumps(run_case()))
    else:
        main()
