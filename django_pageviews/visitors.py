"""Unique visitors per day, stored exactly, in the batch's own transaction.

A visitor is a day's visitor hash (privacy.py). Each batch inserts the (day, hash) pairs
it saw into ``DailyVisitor``, whose unique key refuses the pairs some batch stored before;
the number of rows the statement really inserted is added to that day's
``VisitorsDaily`` row. Both happen in the transaction that records the batch id
(storage.py), so a batch replayed adds nothing, and two batches that saw the same visitor
count it once: the second insert waits on the first's row lock (PostgreSQL, InnoDB) or
the single writer (SQLite), then finds it there. Pairs are inserted in sorted order, as
every other upsert of the drain, so concurrent writers cannot deadlock each other.

Hashes rotate with the day's salt: the same person is a new visitor the next day, and no
figure here (or anywhere) can deduplicate visitors across days. A period's figure is the
sum of its days' visitors: visitor-days, which the dashboard labels as such.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date

from django.db import connections

from .conf import conf
from .events import PageViewEvent, current_day, local_day
from .models import DailyVisitor, VisitorsDaily
from .privacy import anonymous_hash
from .upsert import ROWS_PER_ARRAY, ROWS_PER_STATEMENT, upsert_adding

Visitor = tuple[date, str]  # (day, visitor hash)


def of_events(events: Iterable[PageViewEvent]) -> set[Visitor]:
    """The visitors of hashed events. A view with neither an address nor a user agent (a
    view recorded by hand without them) tells no visitor apart: it counts none."""
    found: set[Visitor] = set()
    anonymous: dict[date, str] = {}
    for e in events:
        day = local_day(e.timestamp)
        nobody = anonymous.get(day) or anonymous.setdefault(day, anonymous_hash(day))
        if e.visitor_hash and e.visitor_hash != nobody:
            found.add((day, e.visitor_hash))
    return found


def record(visitors: Iterable[Visitor], using: str) -> Counter[date]:
    """Store ``visitors`` (call inside the batch's transaction); the new ones per day,
    added to the daily counts. Nothing with ``PAGEVIEW_COUNT_VISITORS`` off."""
    if not conf.COUNT_VISITORS:
        return Counter()
    by_day: dict[date, list[str]] = {}
    for day, visitor_hash in sorted(set(visitors)):
        by_day.setdefault(day, []).append(visitor_hash)
    new: Counter[date] = Counter()
    for day, hashes in by_day.items():
        if added := _insert_new(day, hashes, using):
            new[day] = added
    upsert_adding(VisitorsDaily, ("day",), ("day", "visitors"), sorted(new.items()), using)
    return new


def _insert_new(day: date, hashes: Sequence[str], using: str) -> int:
    """Insert the day's ``hashes`` (sorted), skipping those stored already; how many were
    inserted, as the database counts the rows a statement changed."""
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(DailyVisitor._meta.db_table)
    columns = f"({qn('day')}, {qn('visitor_hash')})"
    conflict = f"ON CONFLICT ({qn('day')}, {qn('visitor_hash')}) DO NOTHING"
    inserted = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array, as upsert.py does: a statement of fixed text however many rows.
            statement = (
                f"INSERT INTO {table} {columns} SELECT %s::date, h FROM unnest(%s::varchar[]) h "
                f"{conflict}"
            )
            for start in range(0, len(hashes), ROWS_PER_ARRAY):
                cursor.execute(statement, [day, list(hashes[start : start + ROWS_PER_ARRAY])])
                inserted += cursor.rowcount
            return inserted
        # MySQL/MariaDB: INSERT IGNORE (a duplicate key is skipped, not an error); its
        # affected rows are the rows inserted. SQLite (>= 3.24) takes PostgreSQL's clause.
        verb, tail = ("INSERT IGNORE", "") if connection.vendor == "mysql" else ("INSERT", conflict)
        stored_day = connection.ops.adapt_datefield_value(day)
        for start in range(0, len(hashes), ROWS_PER_STATEMENT):
            chunk = hashes[start : start + ROWS_PER_STATEMENT]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params = [v for h in chunk for v in (stored_day, h)]
            cursor.execute(f"{verb} INTO {table} {columns} VALUES {values} {tail}", params)
            inserted += cursor.rowcount
    return inserted


def by_day(first: date, last: date) -> Counter[date]:
    """Unique visitors per day from ``first`` to ``last`` (written ones): one indexed read
    of at most one row per day."""
    rows = VisitorsDaily.objects.filter(day__gte=first, day__lte=last).values_list(
        "day", "visitors"
    )
    return Counter(dict(rows))


def forget_old(days: int | None = None) -> int:
    """Delete the visitor rows (hashes) of days more than ``days`` ago (default
    ``PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS``, the horizon within which a batch can be
    replayed); the daily counts stay. The rows deleted."""
    keep = conf.PROCESSED_BATCH_RETENTION_DAYS if days is None else days
    cutoff = current_day() - dt.timedelta(days=keep)
    deleted, _ = DailyVisitor.objects.filter(day__lt=cutoff).delete()
    return deleted
