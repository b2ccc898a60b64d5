"""The adding upsert of totals (daily rows, key rows, skipped requests) in each database.

Django's ``bulk_create(update_conflicts=True)`` can only overwrite a column, not add to
it, so the statement is written here. Rows arrive sorted by key: concurrent writers then
lock rows in the same order and cannot deadlock each other.

PostgreSQL gets one array per column and ``unnest``: a short statement of fixed text
whatever the number of rows. A ``VALUES`` list of thousands of placeholders is longer
than psycopg caches, so psycopg parsed it again in Python for every batch (about a fifth
of the drain's CPU). The other databases take ``VALUES`` lists of bounded size.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.db import connections
from django.db.models import Model

from .models import PageViewDaily, SkippedDaily

# (day, target_hash, content_type_id, object_id, url, view_name, views)
RollupRow = tuple[date, str, int | None, str, str, str, int]
# (day, reason, requests)
SkippedRow = tuple[date, str, int]

COLUMNS = ("day", "target_hash", "content_type_id", "object_id", "url", "view_name", "views")
ROWS_PER_STATEMENT = 200  # VALUES lists (SQLite, MariaDB/MySQL)
ROWS_PER_ARRAY = 10_000  # unnest (PostgreSQL): bounds one statement's size


def upsert_rollups(rows: Sequence[RollupRow], using: str) -> None:
    upsert_adding(PageViewDaily, ("day", "target_hash"), COLUMNS, rows, using)


def upsert_skipped(rows: Sequence[SkippedRow], using: str) -> None:
    upsert_adding(SkippedDaily, ("day", "reason"), ("day", "reason", "requests"), rows, using)


def upsert_adding(
    model: type[Model],
    key: tuple[str, ...],
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    using: str,
) -> None:
    """Insert ``rows`` (values in the order of ``columns``, whose first ones are ``key``
    and whose last is the number added), adding that number to rows that exist."""
    if not rows:
        return
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    added = qn(columns[-1])
    if connection.vendor == "mysql" and connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        conflict = f"ON DUPLICATE KEY UPDATE {added} = {added} + VALUES({added})"
    elif connection.vendor == "mysql":  # MySQL 8.0.20+ deprecates VALUES() here
        conflict = f"AS new ON DUPLICATE KEY UPDATE {added} = {added} + new.{added}"
    else:  # PostgreSQL and SQLite (>= 3.24)
        target = ", ".join(qn(c) for c in key)
        conflict = (
            f"ON CONFLICT ({target}) DO UPDATE SET {added} = {table}.{added} + EXCLUDED.{added}"
        )
    insert = f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)})"
    ordered = sorted(rows, key=lambda r: r[: len(key)])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Arrays of the base types: an explicit cast to varchar(n) would cut a longer
            # value silently, where the INSERT's own assignment refuses it.
            types = [model._meta.get_field(c).db_type(connection) for c in columns]
            arrays = ", ".join(f"%s::{str(t).split('(')[0]}[]" for t in types)
            statement = f"{insert} SELECT * FROM unnest({arrays}) {conflict}"
            for start in range(0, len(ordered), ROWS_PER_ARRAY):
                chunk = ordered[start : start + ROWS_PER_ARRAY]
                cursor.execute(statement, [list(c) for c in zip(*chunk, strict=True)])
            return
        adapt = connection.ops.adapt_datefield_value
        dated = [i for i, c in enumerate(columns) if c == "day"]
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(ordered), ROWS_PER_STATEMENT):
            chunk = ordered[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for row in chunk:
                params += [adapt(v) if i in dated else v for i, v in enumerate(row)]
            values = ", ".join([placeholder] * len(chunk))
            cursor.execute(f"{insert} VALUES {values} {conflict}", params)
