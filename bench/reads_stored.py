"""The stored data of bench/reads.py, made by SQL in the database (no drain: minutes for
what would take the drain hours): the articles, their daily rows and per-key rows.

10,000 articles (quick: 1,000) viewed every day with Zipf-like popularity (article i:
~``PEAK`` / i views a day), one target per article (object, URL, view name), stored as the
drain stores them: ``PageViewDaily``, ``PageViewKeyDaily`` and ``PageViewTotal``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

PEAK = 100_000  # views a day of the most viewed article
VIEW_NAME = "article-detail"
DAILY_TABLES = (
    "django_pageviews_pageviewdaily",
    "django_pageviews_pageviewkeydaily",
    "django_pageviews_pageviewtotal",
)


class StoredData:
    """One database's stored views, added a span of days at a time."""

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
        """A table ``name`` of the integers ``first`` to ``last``, as a FROM item."""
        if self.pg:
            return f"generate_series({first}, {last}) AS {name}({name})"
        return (
            f"(WITH RECURSIVE s(v) AS (SELECT {first} UNION ALL SELECT v + 1 FROM s "
            f"WHERE v < {last}) SELECT v AS {name} FROM s) AS {name}"
        )

    def reset(self) -> None:
        """No views; the articles, and ``bench_keys``: each article's hashes (target, URL
        key, object key), computed here as the product computes them."""
        from django_pageviews.storage import target_hash
        from django_pageviews.totals import OBJECT, URL, key_hash

        for table in (*DAILY_TABLES, "tests_article", "bench_keys"):
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
        if self.pg:
            # VACUUM, as autovacuum does on a site (PostgreSQL 13+ vacuums after inserts
            # too): the past days' pages all-visible, a key's sum over a period reads the
            # (key_hash, day, views) index alone, not one heap page per row (decision 45).
            for table in DAILY_TABLES:
                self.sql(f"VACUUM ANALYZE {table}")
        else:
            self.sql("ANALYZE")
