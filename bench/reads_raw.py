"""The raw rows of bench/reads.py: 10,000,000 ``PageView`` rows (SQLite: 1,000,000), there
so that the database is the size the targets name. The package's reads never read them;
the 0.2.6-like reads (bench/reads_original.py) read nothing else.

For those to give a realistic answer, the rows are spread like the stored views: article
k gets a share of about 1 / (k ln(n + 1)) (Zipf-like: the row's article is
floor((n + 1) ** u), u uniform in [0, 1) from a multiplicative hash of the row number),
over 100 days and over the seconds of each day. Each row has the fields 0.2.6's queries
filter and group on: content type and object id, URL, view name and timestamp.

Made once by SQL and kept between runs (a quick run after a full one keeps the full run's);
rows of an earlier layout (one article after another, uniform) are made again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.reads_stored import VIEW_NAME, StoredData

TABLE = "django_pageviews_pageview"
STEP = 1_000_000  # rows per INSERT


def raw_rows(data: StoredData, rows: int) -> None:
    """At least ``rows`` raw rows, spread over 100 days and, Zipf-like, the articles."""
    count = data.count(TABLE)
    if count >= rows and _skewed(data, count):
        return
    data.sql(f"{'TRUNCATE' if data.pg else 'DELETE FROM'} {TABLE}")
    if data.pg:
        when = "now() - (i %% 100) * interval '1 day' - (i / 100 %% 86400) * interval '1 second'"
        event_id = "md5(i::text)::uuid"
        uniform = "CAST(i * 2654435761 %% 4294967296 AS double precision) / 4294967296"
    else:
        when = (
            "datetime('now', '-' || (i %% 100) || ' days', '-' || (i / 100 %% 86400) || ' seconds')"
        )
        event_id = "printf('%%032x', i)"
        uniform = "CAST(i * 2654435761 %% 4294967296 AS REAL) / 4294967296"
    page = f"CAST(floor(power({data.n + 1}, {uniform})) AS integer)"
    with _without_indexes(data):
        for start in range(1, rows + 1, STEP):
            last = min(start + STEP - 1, rows)
            data.sql(
                f"INSERT INTO {TABLE} (content_type_id, object_id, url, "
                "view_name, timestamp, event_id, visitor_hash) "
                f"SELECT {data.ct}, CAST({page} AS varchar(64)), '/articles/' || {page} || '/', "
                f"'{VIEW_NAME}', {when}, {event_id}, '' FROM {data.series('i', start, last)}"
            )


def _skewed(data: StoredData, count: int) -> bool:
    """Whether the rows are of this layout: the first article has over 1% of them (about
    7.5%; an article of the older, uniform layout had 1 / articles)."""
    with data.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {TABLE} WHERE content_type_id = %s AND object_id = '1'",
            [data.ct],
        )
        return int(cursor.fetchone()[0]) * 100 > count


@contextmanager
def _without_indexes(data: StoredData) -> Iterator[None]:
    """PostgreSQL: indexes dropped during the insert and built after it, in bulk (ten
    times faster than 10,000,000 random insertions into the event id's index)."""
    if not data.pg:
        yield
        return
    with data.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'u'",
            [TABLE],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = %s::regclass)",
            [TABLE, TABLE],
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with data.connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for name, definition in constraints:
                cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
            for _, definition in indexes:
                cursor.execute(definition)
            # As autovacuum leaves a table that grows by inserts (it would, at an unknown
            # moment, between two runs): the 0.2.6-like counts read the index alone.
            cursor.execute(f"VACUUM ANALYZE {TABLE}")
