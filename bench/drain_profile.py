"""Where the drain's time goes, per view: one ``drain_redis(None)`` of a filled Redis under
cProfile (counting the drain process's CPU time), split by stage (claim, read, decode,
...), then the top functions.

    BENCH_DATABASE_URL=postgres://... .venv/bin/python -m bench.drain_profile [VIEWS] > out.txt

Run from the repository root with Django's settings as bench/settings.py takes them
(PAGEVIEW_STORE_RAW, PAGEVIEW_BATCH_SIZE, ...). The drain is timed twice: without the
profiler (the honest per-view figure: wall time, and the drain process's CPU time; the
difference is mostly waiting for the database server and Redis) and under it (the split,
inflated by cProfile's own cost per call, so compare stages with each other). The split
counts CPU time, not wall time: on a shared machine, other processes' load would land on
whichever function happened to run.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from typing import Any

# (stage, module file suffix, function name[, the stage it runs inside]): the outermost
# function of each stage, so that no time is counted twice; a stage that runs inside
# another is taken off that one. Functions of earlier versions are listed too.
STAGES: list[tuple[str, ...]] = [
    ("Redis: claim script", "redis/buffer.py", "claim"),
    ("Redis: read the claim", "redis/buffer.py", "read_claim"),
    ("decode packed raw events", "redis/packing.py", "unpack_all", "Redis: read the claim"),
    ("Redis: acknowledge", "redis/buffer.py", "ack"),
    ("Redis: forget failed mark", "redis/buffer.py", "forget_failed"),
    ("decode raw events (JSON)", "wire.py", "decode_event"),
    ("visitor hashes", "privacy.py", "with_visitor_hashes"),
    ("duplicates within the transaction", "storage.py", "_new_events"),
    ("stored event ids (query; now only after a refusal)", "raw_rows.py", "stored_event_ids"),
    ("URL cap (queries)", "url_cap.py", "cap_new_urls"),
    ("resolve targets", "resolve.py", "resolve_targets"),
    ("raw rows: build model instances", "storage.py", "_raw_rows"),
    ("bulk_create: raw rows (before), batch ids (after)", "query.py", "bulk_create"),
    ("raw rows: COPY / executemany", "raw_rows.py", "insert_raw_rows"),
    ("daily totals upsert", "upsert.py", "upsert_rollups"),
    ("per-key totals upsert", "totals.py", "add"),
    ("skipped upsert", "upsert.py", "upsert_skipped"),
    ("commit", "base.py", "commit"),
]


def main(views: int, pages: int) -> str:
    import django

    django.setup()
    from django.db import connection

    from bench.drain import fill
    from django_pageviews.conf import conf
    from django_pageviews.redis import drain

    _reset()
    fill(0, views, pages)
    cpu, wall = time.process_time(), time.perf_counter()
    result = drain.drain_redis(None)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert result.views == views, result
    _reset()
    fill(0, views, pages)
    profile = cProfile.Profile(time.process_time)  # CPU: another process's load stays out
    profiled = time.process_time()
    profile.enable()
    drain.drain_redis(None)
    profile.disable()
    profiled = time.process_time() - profiled
    out = io.StringIO()
    out.write(
        f"drain_redis(None) of {views:,} views over {pages:,} pages, {connection.vendor}, "
        f"PAGEVIEW_STORE_RAW={conf.STORE_RAW}, PAGEVIEW_BATCH_SIZE={conf.BATCH_SIZE}, "
        f"{result.batches} claims\n"
        f"without profiler: {wall:.2f} s wall = {views / wall:,.0f} views/s, "
        f"{wall / views * 1e6:.1f} us/view wall, {cpu / views * 1e6:.1f} us/view CPU of "
        f"the drain process\nunder cProfile: {profiled:.2f} s of CPU; split by stage "
        "(CPU us/view of the drain process under cProfile):\n\n"
    )
    stats = pstats.Stats(profile)
    spent: Counter[str] = Counter()
    table: Any = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in table.items():
        for stage, suffix, function, *inside in STAGES:
            if name == function and filename.endswith(suffix):
                spent[stage] += cumulative
                for parent in inside:
                    spent[parent] -= cumulative
    for stage, seconds in spent.most_common():
        out.write(f"  {seconds / views * 1e6:7.2f} us  {stage}\n")
    counted = sum(spent.values())
    out.write(f"  {(profiled - counted) / views * 1e6:7.2f} us  everything else\n\n")
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue().replace(os.getcwd() + "/", "")


def _reset() -> None:
    from django.core.management import call_command

    from bench.drain_runner import reset_database

    call_command("migrate", verbosity=0)
    reset_database()


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if sys.argv[1:] else 50_000, 1_000))
