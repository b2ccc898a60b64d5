"""Which database failures are the data's fault, and which are the database's.

A batch refused for its data (a value a column or a trigger refuses, a row that cannot be
built) will be refused again however long one waits: it is split, so that the one record
at fault is isolated. Anything else (the database down, read-only after a failover, a
full disk, a lock timeout, a table missing during a deploy) passes: it is waited out,
and no view is set aside for it. Both the in-process writer and the Redis drain ask here.

PostgreSQL's "program limit exceeded" errors (SQLSTATE class 54: an index row larger than
a third of a page, as a long path of four-byte characters makes) reach Django as
OperationalError, yet no wait makes them pass: taken as an outage, one such view held
every view behind it for good. They are the data's fault, found by the SQLSTATE.
"""

from __future__ import annotations

from django.db import DataError, IntegrityError, OperationalError

DATA_ERRORS = (DataError, IntegrityError, ValueError, TypeError)
# Incorrect string value, incorrect datetime value, out of range, data too long.
MYSQL_DATA_ERROR_CODES = frozenset((1366, 1292, 1264, 1406))
# SQLSTATE classes of PostgreSQL errors that the data causes: program limit exceeded.
POSTGRES_DATA_ERROR_CLASSES = ("54",)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` refuses a batch for what it holds, not for the state of the
    database."""
    # mysqlclient raises OperationalError for some values MySQL refuses (1366: a character
    # the column's charset lacks); they are data errors all the same.
    if isinstance(exc, OperationalError):
        if _sqlstate(exc).startswith(POSTGRES_DATA_ERROR_CLASSES):
            return True
        return bool(exc.args) and exc.args[0] in MYSQL_DATA_ERROR_CODES
    return isinstance(exc, DATA_ERRORS)


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of the driver's error that Django wrapped (psycopg 3: ``sqlstate``,
    psycopg2: ``pgcode``), or ""."""
    cause = exc.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code if isinstance(code, str) else ""
