"""The raw rows of bench/reads.py: 10,000,000 ``PageView`` rows (SQLite: 1,000,000) that
the reads never read, there so that the database is the size the targets name.

Made once by SQL and kept between runs (a quick run after a full one keeps the full run's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.reads_stored import VIEW_NAME, StoredData

TABLE = "django_pageviews_pageview"
STEP = 1_000_000  # rows per INSERT


def raw_rows(data: StoredData, rows: int) -> None:
    """At least ``rows`` raw rows, spread over 100 days and the articles."""
    if data.count(TABLE) >= rows:
        return
    data.sql(f"{'TRUNCATE' if data.pg else 'DELETE FROM'} {TABLE}")
    if data.pg:
        when = "now() - (i %% 100) * interval '1 day'"
        event_id = "md5(i::text)::uuid"
    else:
        when = "datetime('now', '-' || (i %% 100) || ' days')"
        event_id = "printf('%%032x', i)"
    page = f"(1 + i %% {data.n})"
    with _without_indexes(data):
        for start in range(1, rows + 1, STEP):
            last = min(start + STEP - 1, rows)
            data.sql(
                f"INSERT INTO {TABLE} (content_type_id, object_id, url, "
                "view_name, timestamp, event_id, visitor_hash) "
                f"SELECT {data.ct}, CAST({page} AS varchar(64)), '/articles/' || {page} || '/', "
                f"'{VIEW_NAME}', {when}, {event_id}, '' FROM {data.series('i', start, last)}"
            )


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
            cursor.execute(f"ANALYZE {TABLE}")
