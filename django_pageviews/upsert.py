"""The adding upsert of daily totals, in each database's native syntax.

Django's ``bulk_create(update_conflicts=True)`` can only overwrite a column, not add to
it, so the statement is written here. Rows arrive sorted by key: concurrent writers then
lock rows in the same order and cannot deadlock each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.db import connections

from .models import PageViewDaily

# (day, target_hash, content_type_id, object_id, url, view_name, views)
RollupRow = tuple[date, str, int | None, str, str, str, int]

COLUMNS = ("day", "target_hash", "content_type_id", "object_id", "url", "view_name", "views")
ROWS_PER_STATEMENT = 200


def upsert_rollups(rows: Sequence[RollupRow], using: str) -> None:
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(PageViewDaily._meta.db_table)
    views = qn("views")
    if connection.vendor == "mysql" and connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        conflict = f"ON DUPLICATE KEY UPDATE {views} = {views} + VALUES({views})"
    elif connection.vendor == "mysql":  # MySQL 8.0.20+ deprecates VALUES() here
        conflict = f"AS new ON DUPLICATE KEY UPDATE {views} = {views} + new.{views}"
    else:  # PostgreSQL and SQLite (>= 3.24)
        key = f"{qn('day')}, {qn('target_hash')}"
        conflict = f"ON CONFLICT ({key}) DO UPDATE SET {views} = {table}.{views} + EXCLUDED.{views}"
    columns = ", ".join(qn(c) for c in COLUMNS)
    placeholder = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), ROWS_PER_STATEMENT):
            chunk = ordered[start : start + ROWS_PER_STATEMENT]
            values = ", ".join([placeholder] * len(chunk))
            params: list[Any] = []
            for day, *rest in chunk:
                params += [connection.ops.adapt_datefield_value(day), *rest]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values} {conflict}", params)
