"""A real database that refuses the package's writes for a while, while reads still work
(the case that sets batches aside: a read-only or failed-over database, a lock timeout).

- PostgreSQL: the database turns read-only (``default_transaction_read_only``, as a
  standby or a database in maintenance does) and every other session is ended, so that
  each writer reconnects into a read-only session; the test's own connection undoes it.
- MariaDB/MySQL: a trigger refuses every insert of a batch id with the error a
  ``read_only`` server gives (1290); the tests' superuser would pass ``read_only`` itself.
- SQLite: another connection holds the write lock; writers give up after their busy
  timeout ("database is locked"). The worker is started with a short one
  (CHAOS_SQLITE_TIMEOUT, see pipeline_celery), or each attempt would wait 20 s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from django_pageviews.models import ProcessedBatch

TRIGGER = "chaos_refuse_writes"
READ_ONLY_ERRNO = 1290  # ER_OPTION_PREVENTS_STATEMENT: "running with the --read-only option"


@contextmanager
def refusing_writes() -> Iterator[str]:
    """The database refuses the package's writes inside the block; how, as text."""
    if connection.vendor == "postgresql":
        with _read_only_postgres():
            yield "PostgreSQL read-only (default_transaction_read_only, sessions ended)"
    elif connection.vendor == "mysql":
        with _refusing_trigger():
            yield f"a trigger raising error {READ_ONLY_ERRNO} (read-only) on each batch id"
    else:
        with _write_locked_sqlite():
            yield "SQLite write lock held by another connection"


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
def _refusing_trigger() -> Iterator[None]:
    table = connection.ops.quote_name(ProcessedBatch._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} FOR EACH ROW "
            f"SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = {READ_ONLY_ERRNO}, "
            "MESSAGE_TEXT = 'The server is running with the --read-only option (chaos test)'"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER {TRIGGER}")


@contextmanager
def _write_locked_sqlite() -> Iterator[None]:
    raw = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        raw.execute("BEGIN IMMEDIATE")  # readers go on; every writer waits, then fails
        yield
    finally:
        raw.rollback()
        raw.close()
