"""A real database that refuses the package's writes for a while.

PostgreSQL: the database turns read-only (``default_transaction_read_only``, as a
failed-over or maintenance-mode database does) and every other session is ended, so that
each writer reconnects into a read-only session; the test's own connection is left alone
and undoes it. Elsewhere (SQLite, MariaDB, where the tests' superuser would pass a
read-only switch): the table of written batch ids, which every batch writes first, is
renamed away and back, as a deploy whose migration is half done would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from django_pageviews.models import ProcessedBatch

HIDDEN_TABLE = "chaos_refused_processedbatch"


@contextmanager
def refusing_writes() -> Iterator[str]:
    """The database refuses the package's writes inside the block; how, as text."""
    if connection.vendor == "postgresql":
        with _read_only_postgres():
            yield "PostgreSQL read-only (default_transaction_read_only, sessions ended)"
    else:
        with _table_gone():
            yield f"table {ProcessedBatch._meta.db_table} renamed away"


def _end_other_sessions() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@contextmanager
def _read_only_postgres() -> Iterator[None]:
    name = connection.ops.quote_name(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    try:
        _end_other_sessions()
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
        _end_other_sessions()  # the sessions opened meanwhile are read-only


@contextmanager
def _table_gone() -> Iterator[None]:
    table = connection.ops.quote_name(ProcessedBatch._meta.db_table)
    hidden = connection.ops.quote_name(HIDDEN_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {hidden}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {hidden} RENAME TO {table}")
