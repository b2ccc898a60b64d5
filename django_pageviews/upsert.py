"""The adding upsert of daily totals (views, skipped requests), in each database's native
syntax.

Django's ``bulk_create(update_conflicts=True)`` can only overwrite a column, not add to
it, so the statement is written here. Rows arrive sorted by key: concurrent writers then
lock rows in the same order and cannot deadlock each other.
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
ROWS_PER_STATEMENT = 200


def upsert_rollups(rows: Sequence[RollupRow], using: str) -> None:
    _upsert_adding(PageViewDaily, ("day", "target_hash"), COLUMNS, rows, using)


def upsert_skipped(rows: Sequence[SkippedRow], using: str) -> None:
    _upsert_adding(SkippedDaily, ("day", "reason"), ("day", "reason", "requests"), rows, using)


def _upsert_adding(
    model: type[Model],
    key: tuple[str, str],
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    using: str,
) -> None:
    """Insert ``rows`` (day first, the added number last), adding to rows that exist."""
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
    names = ", ".join(qn(c) for c in columns)
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), ROWS_PER_STATEMENT):
            chunk = ordered[start : start + ROWS_PER_STATEMENT]
            values = ", ".join([placeholder] * len(chunk))
            params: list[Any] = []
            for day, *rest in chunk:
                params += [connection.ops.adapt_datefield_value(day), *rest]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {values} {conflict}", params)
