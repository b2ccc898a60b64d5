"""SQLite for small sites: the in-process path with journal_mode DELETE (Django's default)
against WAL.

One process per run, as a small site runs: the package's in-process buffer writes batches
of PAGEVIEW_BATCH_SIZE (100) realistic views as fast as it can (``buffer.flush``, what
its writer thread calls) for SECONDS, while a request thread reads the site's own data
(an article by primary key, on its own connection) every READ_INTERVAL, as pages do.
With DELETE, a commit locks the whole file, so every read waits for the write in
progress; with WAL, readers do not wait for the writer, and synchronous=NORMAL saves an
fsync per commit (a commit still survives a crash of the process; a power cut or an OS
crash can undo the last commits, never corrupt the file). Settings are applied the way a
site would, with Django's ``OPTIONS`` ``init_command`` (Django 5.1+).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from bench.common import PYTHON, ROOT, fmt, markdown_table, subprocess_env
from bench.report import Section, spread

MODES = {
    "DELETE (Django's default)": "PRAGMA journal_mode=DELETE;",
    "WAL, synchronous FULL": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    "WAL, synchronous NORMAL": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
SECONDS = {False: 3.0, True: 0.6}
REPEATS = {False: 3, True: 1}
READ_INTERVAL = 0.005
# WAL is recommended when its read p99 is at most half DELETE's and it writes no slower:
# at least 0.9 times as fast, or within the range of DELETE's runs (the noise of a shared
# machine).
READS_CLEARLY = 0.5
WRITES_AT_LEAST = 0.9


def child(init_command: str, seconds: float) -> dict[str, Any]:
    """In the run's own process: write and read for ``seconds``; the figures."""
    import django
    from django.conf import settings

    settings.DATABASES["default"]["OPTIONS"].update(init_command=init_command)
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum

    from bench.common import realistic_event
    from django_pageviews.buffer import buffer
    from django_pageviews.models import PageViewDaily
    from tests.models import Article

    call_command("migrate", run_syncdb=True, verbosity=0)  # the tests' app: no migrations
    article = Article.objects.create(title="read while writing")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
    latencies: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.wait(READ_INTERVAL):
            began = time.perf_counter()
            Article.objects.filter(pk=article.pk).first()
            latencies.append(time.perf_counter() - began)
        connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    page = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(100):
            buffer.add(realistic_event(page % 1000))
            page += 1
        buffer.flush()
    # The writer thread takes full batches too (a full batch wakes it), so flush()'s own
    # counts miss some: the views written are read back, after the last batch committed.
    buffer.flush()
    elapsed = time.monotonic() - started
    written = PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0
    assert written == page, (written, page)
    stop.set()
    thread.join()
    latencies.sort()
    return {
        "journal": journal,
        "views_per_s": written / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "max_ms": latencies[-1] * 1e3,
        "reads": len(latencies),
    }


def one(init_command: str, seconds: float) -> dict[str, Any]:
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench-wal-") as tmp:
        env = subprocess_env(BENCH_DATABASE_URL=f"sqlite:///{tmp}/site.sqlite3")
        env["PAGEVIEW_MAX_BUFFER_AGE"] = "3600"  # the loop writes; the thread stays idle
        command = [PYTHON, "-m", "bench.sqlite_wal", "--child", init_command, str(seconds)]
        out = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def run(quick: bool) -> Section:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in MODES}
    for _ in range(REPEATS[quick]):
        for name, init_command in MODES.items():  # interleaved
            runs[name].append(one(init_command, SECONDS[quick]))
    rows = [
        [
            name,
            r[0]["journal"],
            spread([x["views_per_s"] for x in r]),
            spread([x["p50_ms"] for x in r], 2),
            spread([x["p99_ms"] for x in r], 2),
            spread([x["max_ms"] for x in r], 1),
            fmt(sum(x["reads"] for x in r)),
        ]
        for name, r in runs.items()
    ]
    med = {
        name: {k: statistics.median(x[k] for x in r) for k in ("views_per_s", "p99_ms")}
        for name, r in runs.items()
    }
    default, wal, normal = (med[name] for name in MODES)
    writes, reads = wal["views_per_s"] / default["views_per_s"], wal["p99_ms"] / default["p99_ms"]
    # "No slower": WAL's median write rate is within DELETE's range of runs, or above it.
    slowest_default = min(x["views_per_s"] for x in runs[next(iter(MODES))])
    no_slower = writes >= WRITES_AT_LEAST or wal["views_per_s"] >= slowest_default
    better = reads <= READS_CLEARLY and no_slower
    advice = (
        "**WAL is recommended for a site on SQLite** "
        '(docs/howto/deployment.md, "SQLite and WAL"): reads no '
        "longer wait for the writer's commits, and writing is no slower (within the spread "
        "of the runs)."
        if better
        else "WAL is not clearly better in this run: no change is recommended."
    )
    n = REPEATS[quick]
    body = "\n\n".join(
        [
            f"{SECONDS[quick]:g} s per run, {n} interleaved run{'s' * (n > 1)} per mode, "
            "median (min-max). Reads: one article by primary key every "
            f"{READ_INTERVAL * 1e3:g} ms from a request thread, in ms.",
            markdown_table(
                ["mode", "journal", "views written/s", "read p50", "read p99", "read max", "reads"],
                rows,
            ),
            f"With WAL (synchronous FULL, durability unchanged) the read p99 is {reads:.2f} "
            f"times DELETE's and writing {writes:.2f} times as fast; synchronous NORMAL writes "
            f"{normal['views_per_s'] / wal['views_per_s']:.2f} times as fast as FULL. {advice}",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
        ]
    )
    headline = [
        f"SQLite, in process, DELETE -> WAL: read p99 while writing {default['p99_ms']:.1f} -> "
        f"{wal['p99_ms']:.1f} ms, writes {default['views_per_s']:,.0f} -> "
        f"{wal['views_per_s']:,.0f} views/s: "
        + ("WAL recommended" if better else "no change recommended")
    ]
    return Section("SQLite for small sites: journal mode DELETE or WAL", body, headline)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        print(json.dumps(child(sys.argv[2], float(sys.argv[3]))))
    else:
        print(run("--quick" in sys.argv).body)
