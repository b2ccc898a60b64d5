"""Reads at size: counts and most-viewed lists over a long history, live and not.

    python -m bench.reads [--quick]

10,000 articles viewed every day with Zipf-like popularity (article i: ~100,000 / i views a
day), stored as the drain stores them (daily rows, per-key rows), plus 10,000,000 raw
rows (PostgreSQL; SQLite: 1,000,000), made by SQL in the database. First the last 10
days are stored, and every read is timed; then 90 older days are added (1,000,000 daily
rows) and the reads are timed again: a read that does not grow with history takes the
same time. "live": the reads run with Redis (async mode) holding views not yet written
(200,000 distinct pending pages, quick: 2,000: articles and new URLs, 1-5 views each),
which they count too.
``--quick``: 1,000 articles, 1,000,000 raw rows (SQLite: 10,000).

Each read is timed 7 times, the reads interleaved; the tables give the median and the
range (min-max), in ms, in this process (in-process Django, no HTTP). Each database runs
in a subprocess of its own (its own Django settings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import POSTGRES_URL, PYTHON, ROOT, markdown_table, subprocess_env  # noqa: E402
from bench.report import Section, spread  # noqa: E402

REPEATS = 7
RECENT_DAYS = 10
ALL_DAYS = 100
PEAK = 100_000  # views a day of the most viewed article
VIEW_NAME = "article-detail"
PENDING = 200_000  # distinct pages pending in Redis for the live reads
PENDING_QUICK = 2_000

# (read, target in ms or "")
TARGETS = {
    "get_view_count(obj)": "<= 1",
    "get_view_count(url=...)": "",
    "get_view_counts_for_objects(50)": "<= 3",
    "get_popular_objects(Article, 10, days=7)": "<= 5",
    "get_popular_objects(Article, 10, days=30)": "<= 5",
    "get_popular_objects(Article, 10, days=90)": "<= 5",
    "get_popular_objects(Article, 10) all time": "<= 5",
    "get_popular_urls(10, days=7)": "<= 5",
    "get_popular_urls(10) all time": "<= 5",
    "get_popular_view_names(5, days=7)": "<= 5",
    "get_popular_view_names(5) all time": "<= 5",
    "get_daily_views(obj, 30)": "",
}


def sizes(vendor: str, quick: bool) -> tuple[int, int]:
    """(articles, raw rows)."""
    articles = 1_000 if quick else 10_000
    if vendor == "postgresql":
        return articles, 1_000_000 if quick else 10_000_000
    return articles, 10_000 if quick else 1_000_000


# ---- in the subprocess -------------------------------------------------------------


def case(vendor: str, quick: bool) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)
    articles, raw = sizes(vendor, quick)
    started = time.perf_counter()
    gen = Generator(connection, articles)
    gen.reset()
    gen.raw_rows(raw)
    gen.days(0, RECENT_DAYS - 1)
    made = {"raw": raw, "setup_s": time.perf_counter() - started}
    recent = measure(articles, quick)
    started = time.perf_counter()
    gen.days(RECENT_DAYS, ALL_DAYS - 1)
    made["more_s"] = time.perf_counter() - started
    made["daily"] = gen.count("django_pageviews_pageviewdaily")
    made["key_daily"] = gen.count("django_pageviews_pageviewkeydaily")
    made["raw_stored"] = gen.count("django_pageviews_pageview")
    full = measure(articles, quick)
    return {"made": made, "recent": recent, "full": full}


class Generator:
    """The stored data, made by SQL in the database."""

    def __init__(self, connection: Any, articles: int) -> None:
        from django.contrib.contenttypes.models import ContentType

        from django_pageviews.events import current_day
        from tests.models import Article

        self.connection, self.n = connection, articles
        self.pg = connection.vendor == "postgresql"
        self.ct = ContentType.objects.get_for_model(Article).pk
        self.today = current_day()

    def sql(self, statement: str, params: list[Any] | None = None) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params or [])

    def count(self, table: str) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            return int(cursor.fetchone()[0])

    def series(self, name: str, first: int, last: int) -> str:
        if self.pg:
            return f"generate_series({first}, {last}) AS {name}({name})"
        return (
            f"(WITH RECURSIVE s(v) AS (SELECT {first} UNION ALL SELECT v + 1 FROM s "
            f"WHERE v < {last}) SELECT v AS {name} FROM s) AS {name}"
        )

    def reset(self) -> None:
        from django_pageviews.storage import target_hash
        from django_pageviews.totals import OBJECT, URL, key_hash

        for table in (
            "django_pageviews_pageviewdaily",
            "django_pageviews_pageviewkeydaily",
            "django_pageviews_pageviewtotal",
            "tests_article",
            "bench_keys",
        ):
            if table != "bench_keys" or table in self.connection.introspection.table_names():
                self.sql(f"{'TRUNCATE' if self.pg else 'DELETE FROM'} {table}")
        self.sql(
            "CREATE TABLE IF NOT EXISTS bench_keys (i integer PRIMARY KEY, "
            "thash varchar(32), uhash varchar(32), ohash varchar(32))"
        )
        self.sql("CREATE INDEX IF NOT EXISTS bench_keys_thash ON bench_keys (thash)")
        rows = []
        for i in range(1, self.n + 1):
            url = f"/articles/{i}/"
            rows.append(
                (
                    i,
                    target_hash(self.ct, str(i), url, VIEW_NAME),
                    key_hash(URL, None, url),
                    key_hash(OBJECT, self.ct, str(i)),
                )
            )
        with self.connection.cursor() as cursor:
            cursor.executemany("INSERT INTO bench_keys VALUES (%s, %s, %s, %s)", rows)
        self.sql(
            "INSERT INTO tests_article (id, title, slug) SELECT i, 'Article ' || i, 'a-' || i "
            f"FROM {self.series('i', 1, self.n)}"
        )

    def raw_rows(self, rows: int) -> None:
        """Raw rows are never read by these reads: made once, kept between runs (a quick
        run after a full one keeps the full run's)."""
        if self.count("django_pageviews_pageview") >= rows:
            return
        self.sql(f"{'TRUNCATE' if self.pg else 'DELETE FROM'} django_pageviews_pageview")
        if self.pg:
            when = "now() - (i %% 100) * interval '1 day'"
            event_id = "md5(i::text)::uuid"
        else:
            when = "datetime('now', '-' || (i %% 100) || ' days')"
            event_id = "printf('%%032x', i)"
        page = f"(1 + i %% {self.n})"
        step = 1_000_000
        with self._without_raw_indexes():
            self._insert_raw(rows, step, page, when, event_id)

    @contextmanager
    def _without_raw_indexes(self) -> Iterator[None]:
        """PostgreSQL: indexes dropped during the insert and built after it, in bulk (ten
        times faster than 10,000,000 random insertions into the event id's index)."""
        if not self.pg:
            yield
            return
        table = "django_pageviews_pageview"
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'u'",
                [table],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                "WHERE conrelid = %s::regclass)",
                [table, table],
            )
            indexes = cursor.fetchall()
            for name, _ in constraints:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
        try:
            yield
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '512MB'")
                for name, definition in constraints:
                    cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                for _, definition in indexes:
                    cursor.execute(definition)
                cursor.execute(f"ANALYZE {table}")

    def _insert_raw(self, rows: int, step: int, page: str, when: str, event_id: str) -> None:
        for start in range(1, rows + 1, step):
            last = min(start + step - 1, rows)
            self.sql(
                "INSERT INTO django_pageviews_pageview (content_type_id, object_id, url, "
                "view_name, timestamp, event_id, visitor_hash) "
                f"SELECT {self.ct}, CAST({page} AS varchar(64)), '/articles/' || {page} || '/', "
                f"'{VIEW_NAME}', {when}, {event_id}, '' FROM {self.series('i', start, last)}"
            )

    def days(self, first: int, last: int) -> None:
        """Days ``first`` to ``last`` ago: daily rows, their keys' rows, all-time rows."""
        from django_pageviews.totals import VIEW, key_hash

        today = self.connection.ops.adapt_datefield_value(self.today)
        day = "CAST(%s AS date) - d" if self.pg else "date(%s, '-' || d || ' days')"
        views = f"({PEAK} / k.i) * (10 + ((k.i * 31 + d * 17) %% 7)) / 10 + 1"
        self.sql(
            "INSERT INTO django_pageviews_pageviewdaily (day, target_hash, content_type_id, "
            f"object_id, url, view_name, views) SELECT {day}, k.thash, {self.ct}, "
            f"CAST(k.i AS varchar(64)), '/articles/' || k.i || '/', '{VIEW_NAME}', {views} "
            f"FROM bench_keys k CROSS JOIN {self.series('d', first, last)}",
            [today],
        )
        oldest = self.today - timedelta(days=last)
        newest = self.today - timedelta(days=first)
        span = [self.connection.ops.adapt_datefield_value(d) for d in (oldest, newest)]
        keys = (
            "django_pageviews_pageviewkeydaily (day, key_hash, kind, content_type_id, value, views)"
        )
        joined = (
            "FROM django_pageviews_pageviewdaily d JOIN bench_keys k ON k.thash = d.target_hash "
            "WHERE d.day BETWEEN %s AND %s"
        )
        self.sql(
            f"INSERT INTO {keys} SELECT d.day, k.uhash, 'u', NULL, d.url, d.views {joined}", span
        )
        self.sql(
            f"INSERT INTO {keys} SELECT d.day, k.ohash, 'o', {self.ct}, d.object_id, d.views "
            f"{joined}",
            span,
        )
        self.sql(
            f"INSERT INTO {keys} SELECT d.day, %s, 'v', NULL, %s, SUM(d.views) "
            "FROM django_pageviews_pageviewdaily d WHERE d.day BETWEEN %s AND %s GROUP BY d.day",
            [key_hash(VIEW, None, VIEW_NAME), VIEW_NAME, *span],
        )
        self.sql("DELETE FROM django_pageviews_pageviewtotal")
        self.sql(
            "INSERT INTO django_pageviews_pageviewtotal (key_hash, kind, content_type_id, value, "
            "views) SELECT key_hash, kind, content_type_id, value, SUM(views) "
            "FROM django_pageviews_pageviewkeydaily GROUP BY key_hash, kind, content_type_id, value"
        )
        self.sql("ANALYZE" if not self.pg else "ANALYZE django_pageviews_pageviewkeydaily")
        if self.pg:
            self.sql("ANALYZE django_pageviews_pageviewtotal")
            self.sql("ANALYZE django_pageviews_pageviewdaily")


def ship_pending(pages: int, articles: int) -> None:
    """``pages`` distinct pages pending in Redis today, as producers ship them."""
    from bench.common import flush_redis, redis_client
    from django_pageviews.events import PK, Target, current_day
    from django_pageviews.redis_buffer import Shipment
    from django_pageviews.redis_client import get_client
    from django_pageviews.redis_scripts import ship
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
    for start in range(0, pages, 500):
        part = targets[start : start + 500]
        counts = Counter({count_field(today, t): 1 + (k * 7919) % 5 for k, t in enumerate(part)})
        shipment = Shipment(counts, [], [])  # SHIP derives the live totals and day lists
        keys, args = shipment.script_args()
        ship(keys=keys, args=args, client=get_client())


def reads(articles: int) -> dict[str, Callable[[], object]]:
    from django_pageviews.models import PageView
    from tests.models import Article

    obj = Article.objects.get(pk=50)
    many = list(Article.objects.filter(pk__lte=articles).order_by("?")[:50])
    return {
        "get_view_count(obj)": lambda: PageView.get_view_count(obj=obj),
        "get_view_count(url=...)": lambda: PageView.get_view_count(url="/articles/50/"),
        "get_view_counts_for_objects(50)": lambda: PageView.get_view_counts_for_objects(many),
        "get_popular_objects(Article, 10, days=7)": lambda: PageView.get_popular_objects(
            Article, limit=10, days=7
        ),
        "get_popular_objects(Article, 10, days=30)": lambda: PageView.get_popular_objects(
            Article, limit=10, days=30
        ),
        "get_popular_objects(Article, 10, days=90)": lambda: PageView.get_popular_objects(
            Article, limit=10, days=90
        ),
        "get_popular_objects(Article, 10) all time": lambda: PageView.get_popular_objects(
            Article, limit=10
        ),
        "get_popular_urls(10, days=7)": lambda: PageView.get_popular_urls(limit=10, days=7),
        "get_popular_urls(10) all time": lambda: PageView.get_popular_urls(limit=10),
        "get_popular_view_names(5, days=7)": lambda: PageView.get_popular_view_names(5, days=7),
        "get_popular_view_names(5) all time": lambda: PageView.get_popular_view_names(5),
        "get_daily_views(obj, 30)": lambda: PageView.get_daily_views(obj, 30),
    }


def measure(articles: int, quick: bool) -> dict[str, dict[str, list[float]]]:
    """{mode: {read: [ms, ...]}}, modes "stored" and "live"."""
    from django.test import override_settings

    from bench.common import flush_redis, redis_client

    result: dict[str, dict[str, list[float]]] = {}
    for mode in ("stored", "live"):
        live = mode == "live"
        if live:
            ship_pending(PENDING_QUICK if quick else PENDING, articles)
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=live):
            todo = reads(articles)
            times: dict[str, list[float]] = {name: [] for name in todo}
            for read in todo.values():
                read()  # warm: content types, connections, scripts
            for _ in range(REPEATS):
                for name, read in todo.items():
                    started = time.perf_counter()
                    read()
                    times[name].append((time.perf_counter() - started) * 1000)
        result[mode] = times
    flush_redis(redis_client())
    return result


# ---- in the parent ----------------------------------------------------------------


def run_case(vendor: str, quick: bool) -> dict[str, Any]:
    if vendor == "postgresql":
        url = POSTGRES_URL
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="pageviews-reads-")
        url = f"sqlite:///{tmp}/reads.sqlite3"
    args = [PYTHON, "-m", "bench.reads", "--case", vendor] + (["--quick"] if quick else [])
    env = subprocess_env(BENCH_DATABASE_URL=url, BENCH_TRACKING="redis")
    try:
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    finally:
        if tmp is not None:
            for f in Path(tmp).iterdir():
                f.unlink()
            os.rmdir(tmp)
    if done.returncode != 0:
        raise SystemExit(f"bench.reads {vendor} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def table(result: dict[str, Any]) -> str:
    rows = []
    for name, target in TARGETS.items():
        row = [name, target]
        for mode in ("stored", "live"):
            for phase in ("recent", "full"):
                row.append(spread(result[phase][mode][name], 2))
        rows.append(row)
    headers = [
        "read",
        "target ms",
        f"{RECENT_DAYS} days stored",
        f"{ALL_DAYS} days stored",
        f"{RECENT_DAYS} days, live",
        f"{ALL_DAYS} days, live",
    ]
    return markdown_table(headers, rows)


def run(quick: bool) -> Section:
    results = {vendor: run_case(vendor, quick) for vendor in ("postgresql", "sqlite")}
    parts, headline = [], []
    for vendor, result in results.items():
        made = result["made"]
        parts.append(
            f"**{'PostgreSQL' if vendor == 'postgresql' else 'SQLite'}**: "
            f"{made['daily']:,} daily rows ({made['key_daily']:,} per-key daily rows), "
            f"{made['raw_stored']:,} raw rows; made in {made['setup_s']:.0f} s + "
            f"{made['more_s']:.0f} s. ms, median (min-max) of {REPEATS}.\n\n" + table(result)
        )
        worst = max(
            max(result["full"][mode][name])
            for mode in ("stored", "live")
            for name in TARGETS
            if name.startswith("get_popular")
        )
        headline.append(
            f"reads, {vendor}, {made['daily']:,} daily rows: get_view_count(obj) "
            f"{min(result['full']['stored']['get_view_count(obj)']):.2f} ms (target <= 1), "
            f"most-viewed lists at most {worst:.1f} ms (target <= 5)"
        )
    body = "\n\n".join(parts) + "\n\n" + (__doc__ or "").split("\n\n", 2)[1]
    return Section(title="Reads at size", body=body, headline=headline)


def main() -> None:
    quick = "--quick" in sys.argv
    if "--case" in sys.argv:
        vendor = sys.argv[sys.argv.index("--case") + 1]
        print(json.dumps(case(vendor, quick)))
        return
    section = run(quick)
    print(f"## {section.title}\n\n{section.body}\n")
    print("\n".join(section.headline))


if __name__ == "__main__":
    main()
