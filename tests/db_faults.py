"""Real database faults for the drain tests: the connection refuses writes (a read-only
session, as after a failover to a replica), or a trigger refuses one page's row (a poison
record), on SQLite, PostgreSQL and MariaDB/MySQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import Model

TRIGGER = "pageviews_test_poison"


@contextmanager
def read_only() -> Iterator[None]:
    """The test's connection (the one the drain uses in this thread) refuses writes."""
    on, off = {
        "sqlite": ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
        "postgresql": (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        ),
        "mysql": ("SET SESSION TRANSACTION READ ONLY", "SET SESSION TRANSACTION READ WRITE"),
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(on)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(off)


def refuse_url(model: type[Model], url: str) -> None:
    """A trigger that makes the database refuse any new row of ``model`` for ``url``, for
    its data (as a value out of range or too long would be)."""
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = url.replace("'", "''")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} "
                f"WHEN NEW.url = '{quoted}' BEGIN SELECT RAISE(ABORT, 'poison page'); END"
            )
        elif connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE FUNCTION {TRIGGER}() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.url = '{quoted}' THEN RAISE EXCEPTION 'poison page' "
                "USING ERRCODE = '22000'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} FOR EACH ROW BEGIN "
                f"IF NEW.url = '{quoted}' THEN SIGNAL SQLSTATE '22001' "
                "SET MESSAGE_TEXT = 'poison page', MYSQL_ERRNO = 1406; END IF; END"
            )


def allow_all(model: type[Model], trigger: str = TRIGGER) -> None:
    """Drop the refusing ``trigger`` (and its PostgreSQL function) from ``model``'s table."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
        else:
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
