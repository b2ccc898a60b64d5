"""Raw rows on PostgreSQL in monthly partitions: convert the table, add months, drop old ones.

The raw table grows by a row per view, and deleting old rows row by row (clean_pageviews)
costs as much as writing them did, plus the vacuum. With the table partitioned by month on
``timestamp`` (PostgreSQL's declarative partitioning), an expired month is one ``DROP
TABLE``; the daily, key and all-time totals are other tables and stay whole.

Partitions are named as pg_partman 5 names them: ``<table>_p<YYYYMMDD>`` for the month
starting that day (UTC), ``<table>_default`` for the DEFAULT partition, which takes a view
whose month has none, so that no batch ever fails for want of a partition. Adding a month
moves the rows the default partition holds for it into the new partition.

PostgreSQL's unique indexes on a partitioned table must include the partition key: the
primary key becomes (id, timestamp) and the event id's unique key (event_id, timestamp).
A view delivered twice is the same event with the same timestamp, so the copy still hits
the key and is skipped (storage.py): exactly once holds for every view whose month is
still kept (docs/decisions.md, "Raw rows in monthly partitions").

Everything here is PostgreSQL SQL, run on the database the router gives the raw table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connections, router, transaction
from django.db.backends.utils import CursorWrapper

from .models import PageView

Quote = Callable[[str], str]
DEFAULT_AHEAD = 3  # months made ahead of the current one
_MONTH_SUFFIX = re.compile(r"_p(\d{4})(\d{2})01$")


@dataclass
class Report:
    """What a run did, and what it found."""

    converted_rows: int | None = None  # rows moved into the partitioned table; None: not run
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_from_default: int = 0  # rows of the default partition moved into a new month
    in_default: int = 0  # rows left in the default partition (months with no partition)


def table() -> str:
    return PageView._meta.db_table


def database() -> str:
    return router.db_for_write(PageView)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


def partition_name(month: date) -> str:
    return f"{table()}_p{month:%Y%m%d}"


def default_name() -> str:
    return f"{table()}_default"


def is_partitioned(using: str | None = None) -> bool:
    with connections[using or database()].cursor() as cursor:
        return _is_partitioned(cursor)


def _is_partitioned(cursor: CursorWrapper) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table()])
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def months(using: str | None = None) -> list[date]:
    """The months that have a partition, oldest first."""
    with connections[using or database()].cursor() as cursor:
        return sorted(_months(cursor))


def _months(cursor: CursorWrapper) -> dict[date, str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        [table()],
    )
    found: dict[date, str] = {}
    for (name,) in cursor.fetchall():
        if name.startswith(table()) and (match := _MONTH_SUFFIX.search(name)):
            found[date(int(match[1]), int(match[2]), 1)] = name
    return found


def _coming(moment: datetime, ahead: int) -> list[date]:
    """The month of ``moment`` and the ``ahead`` after it."""
    found = [month_start(moment.date())]
    for _ in range(ahead):
        found.append(next_month(found[-1]))
    return found


def _in_month(month: date) -> str:
    """A condition on the raw table: the view's timestamp is in ``month`` (UTC)."""
    start, end = _bound(month), _bound(next_month(month))
    return f"\"timestamp\" >= '{start}' AND \"timestamp\" < '{end}'"


def _bound(month: date) -> str:
    return f"{month:%Y-%m-%d} 00:00:00+00"


def convert(ahead: int = DEFAULT_AHEAD, now: datetime | None = None) -> int | None:
    """Make the raw table a table partitioned by month, in ONE transaction: the rows are
    copied into partitions (every month that has views, the current one, the next
    ``ahead``, and the default), the old table dropped, its indexes made again with
    their names on the new one. The rows copied; None if partitioned already.

    The table is locked (ACCESS EXCLUSIVE) from the start: a drain's transaction waits
    for the commit and then writes into the partitioned table, or committed before and
    its rows are among those copied; none is lost or written twice. Readers of raw rows
    (the admin, clean_pageviews) wait too; counts never read this table."""
    using = database()
    connection = connections[using]
    qn = connection.ops.quote_name
    t = table()
    new = f"{t}_partitioned"
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {qn(t)} IN ACCESS EXCLUSIVE MODE")
        if _is_partitioned(cursor):
            return None
        indexes = _indexes(cursor)
        cursor.execute(
            f"CREATE TABLE {qn(new)} (LIKE {qn(t)} INCLUDING DEFAULTS INCLUDING STORAGE) "
            'PARTITION BY RANGE ("timestamp")'
        )
        # A serial column's default names the old table's sequence, which goes with it.
        cursor.execute(f"ALTER TABLE {qn(new)} ALTER COLUMN id DROP DEFAULT")
        # The months that hold rows (one scan, as the copy makes anyway), and the current
        # one and the next ``ahead``.
        cursor.execute(
            "SELECT DISTINCT (date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC'))::date "
            f"FROM {qn(t)}"
        )
        wanted = {month for (month,) in cursor.fetchall()}
        wanted.update(_coming((now or datetime.now(UTC)).astimezone(UTC), ahead))
        for month in sorted(wanted):
            _create_partition(cursor, qn, new, month)
        cursor.execute(f"SELECT max(id) FROM {qn(t)}")
        (last_id,) = cursor.fetchone()
        cursor.execute(f"CREATE TABLE {qn(default_name())} PARTITION OF {qn(new)} DEFAULT")
        cursor.execute(f"INSERT INTO {qn(new)} SELECT * FROM {qn(t)}")
        copied = int(cursor.rowcount)
        cursor.execute(f"DROP TABLE {qn(t)}")  # its indexes, and its id sequence
        cursor.execute(f"ALTER TABLE {qn(new)} RENAME TO {qn(t)}")
        sequence = f"{t}_id_seq"
        cursor.execute(f"CREATE SEQUENCE {qn(sequence)} START WITH {(last_id or 0) + 1}")
        cursor.execute(f"ALTER SEQUENCE {qn(sequence)} OWNED BY {qn(t)}.id")
        cursor.execute(
            f"ALTER TABLE {qn(t)} ALTER COLUMN id SET DEFAULT nextval('{qn(sequence)}'::regclass)"
        )
        for name, definition, kind, columns in indexes:
            if kind in ("p", "u"):
                # With the partition key, as PostgreSQL requires of a unique key here.
                keys = ", ".join([*(qn(c) for c in columns), qn("timestamp")])
                what = "PRIMARY KEY" if kind == "p" else "UNIQUE"
                cursor.execute(f"ALTER TABLE {qn(t)} ADD CONSTRAINT {qn(name)} {what} ({keys})")
            else:
                cursor.execute(definition)
    return copied


def _indexes(cursor: CursorWrapper) -> list[tuple[str, str, str | None, list[str]]]:
    """(name, CREATE INDEX statement, constraint kind 'p'/'u'/None, columns) of each index
    of the raw table."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), con.contype, "
        "ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = x.indrelid "
        "WHERE x.indrelid = to_regclass(%s) ORDER BY i.relname",
        [table()],
    )
    return [(name, sql, kind, list(columns)) for name, sql, kind, columns in cursor.fetchall()]


def _create_partition(cursor: CursorWrapper, qn: Quote, parent: str, month: date) -> None:
    # Literals, not parameters: DDL takes none. Both are made here from a date.
    cursor.execute(
        f"CREATE TABLE {qn(partition_name(month))} PARTITION OF {qn(parent)} "
        f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(next_month(month))}')"
    )


def maintain(
    ahead: int = DEFAULT_AHEAD, keep_days: int | None = None, now: datetime | None = None
) -> Report:
    """Partitions for the current month and the next ``ahead`` (the rows the default
    partition holds for one moved into it), and, with ``keep_days``, the months that
    ended more than ``keep_days`` days ago dropped. One transaction per month changed."""
    using = database()
    connection = connections[using]
    qn = connection.ops.quote_name
    report = Report()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    for month in _coming(moment, ahead):
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if month in _months(cursor):
                continue
            report.moved_from_default += _add_month(cursor, qn, month)
            report.created.append(partition_name(month))
    if keep_days is not None:
        cutoff = moment - timedelta(days=keep_days)
        with connection.cursor() as cursor:
            existing = _months(cursor)
        for month, name in sorted(existing.items()):
            ends = datetime.combine(next_month(month), datetime.min.time(), tzinfo=UTC)
            if ends <= cutoff:
                with transaction.atomic(using=using), connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE {qn(name)}")
                report.dropped.append(name)
    report.in_default = rows_in_default(using)
    return report


def _add_month(cursor: CursorWrapper, qn: Quote, month: date) -> int:
    """Create ``month``'s partition; the rows the default partition holds for that month
    (PostgreSQL refuses the new partition while they are there) moved into it. The
    rows moved."""
    default = qn(default_name())
    in_month = _in_month(month)
    cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
    moving = "pageviews_moving"
    cursor.execute(f"CREATE TEMPORARY TABLE {moving} AS SELECT * FROM {default} WHERE {in_month}")
    moved = int(cursor.rowcount)
    if moved:
        cursor.execute(f"DELETE FROM {default} WHERE {in_month}")
    _create_partition(cursor, qn, table(), month)
    if moved:
        cursor.execute(f"INSERT INTO {qn(table())} SELECT * FROM {moving}")
    cursor.execute(f"DROP TABLE {moving}")
    return moved


def rows_in_default(using: str | None = None) -> int:
    """Rows of the default partition: views whose month had no partition when written."""
    connection = connections[using or database()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [default_name()])
        row = cursor.fetchone()
        if row is None or row[0] is None:
            return 0
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(default_name())}")
        count = cursor.fetchone()
        return int(count[0]) if count else 0
