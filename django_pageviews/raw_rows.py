"""Raw rows in bulk: which events are stored already, and writing the others, in each
database's fastest way that stays inside the caller's transaction.

The ORM's ``bulk_create`` built a model instance per view and prepared each of its eleven
fields through the field API: about 60 us a view, more than everything else the drain does
(docs/profiles/drain-before.txt). Rows are plain tuples here, built with what is the same
for every view of a target computed once per target. PostgreSQL takes them through
``COPY ... FROM STDIN`` (psycopg 3), the others through one ``executemany`` of a plain
INSERT (sqlite3 runs it in C; mysqlclient turns it into multi-row INSERTs). Either way the
rows go through the table's constraints and triggers as any INSERT would: an event id
stored twice still fails the transaction, and a value the database refuses still fails it
for its data (splitting.py then isolates the record).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from .events import PageViewEvent, Target
from .models import PageView
from .resolve import Resolved

# The columns written, in this order; ``id`` comes from the sequence, ``session_key`` stays
# NULL (the original package's column, never filled by this one).
COLUMNS = (
    "content_type_id",
    "object_id",
    "url",
    "view_name",
    "ip_address",
    "user_agent",
    "timestamp",
    "event_id",
    "visitor_hash",
)
ROWS_PER_STATEMENT = 1000  # executemany: bounded statements on MariaDB/MySQL
IDS_PER_QUERY = 900  # under SQLite's oldest limit of 999 parameters
_HEX32 = re.compile("[0-9a-f]{32}").fullmatch


def stored_event_ids(event_ids: Iterable[str], using: str) -> set[str]:
    """Of ``event_ids`` (uuid4 hex, as events carry them), those stored as raw rows, as
    given. One indexed query (per 900 ids outside PostgreSQL). An id no row can have is
    not looked up: written, it is refused as it would have been."""
    ids: dict[str, str] = {}  # the id as the column holds it -> as given
    for event_id in event_ids:
        key = _column_form(event_id)
        if key is not None:
            ids[key] = event_id
    if not ids:
        return set()
    connection = connections[using]
    table = connection.ops.quote_name(PageView._meta.db_table)
    stored: set[str] = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One parameter: no statement of thousands of placeholders to build, send and
            # parse; and one string rather than a list, which psycopg would dump element
            # by element in Python (hex ids hold no comma).
            cursor.execute(
                f"SELECT event_id::text FROM {table} "
                "WHERE event_id = ANY(string_to_array(%s, ',')::uuid[])",
                [",".join(ids)],
            )
            stored.update(ids[uuid.UUID(row[0]).hex] for row in cursor.fetchall())
            return stored
        keys = list(ids)
        native = connection.features.has_native_uuid_field
        for start in range(0, len(keys), IDS_PER_QUERY):
            chunk = keys[start : start + IDS_PER_QUERY]
            marks = ", ".join(["%s"] * len(chunk))
            params = [uuid.UUID(k) for k in chunk] if native else chunk
            cursor.execute(f"SELECT event_id FROM {table} WHERE event_id IN ({marks})", params)
            for (found,) in cursor.fetchall():
                key = found.hex if isinstance(found, uuid.UUID) else str(found).replace("-", "")
                stored.add(ids[key.lower()])
    return stored


def _column_form(event_id: object) -> str | None:
    """The 32-digit lowercase hex an event id is stored as, or None if it is not one."""
    if isinstance(event_id, str) and _HEX32(event_id):
        return event_id
    try:
        return uuid.UUID(str(event_id)).hex
    except (ValueError, TypeError, AttributeError):
        return None


def insert_raw_rows(
    events: Sequence[PageViewEvent], resolved: dict[Target, Resolved], using: str
) -> None:
    """Write one raw row per event, inside the caller's transaction."""
    if not events:
        return
    connection = connections[using]
    rows = _rows(events, resolved, connection.vendor != "postgresql", using)
    qn = connection.ops.quote_name
    table = qn(PageView._meta.db_table)
    names = ", ".join(qn(c) for c in COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's cursor wrapper hides psycopg's copy(): the driver's own cursor has
            # it, and the errors it raises are made Django's (a DataError for a refused
            # value, as the INSERT would raise) as the wrapper would.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == ROWS_PER_STATEMENT:
                cursor.executemany(insert, chunk)
                chunk = []
        if chunk:
            cursor.executemany(insert, chunk)


def _rows(
    events: Sequence[PageViewEvent],
    resolved: dict[Target, Resolved],
    adapt: bool,
    using: str,
) -> Iterator[tuple[Any, ...]]:
    """Row tuples in COLUMNS order, made as they are sent: the database takes in the rows
    already sent (on the other core) while the next ones are made. ``adapt``: values as
    Django's backend would send them (the timestamp as its text, the event id as the
    column stores it); else as psycopg takes them for COPY."""
    parts: dict[Target, tuple[int | None, str | None, str, str | None]] = {}
    for target in {e.target for e in events}:
        content_type_id, object_id = resolved[target]
        parts[target] = (content_type_id, object_id or None, target.url, target.view_name or None)
    connection = connections[using]
    native_uuid = connection.features.has_native_uuid_field
    # As Django stores a moment: in the connection's zone (UTC) with USE_TZ, else the
    # site's local time; as text (naive) outside PostgreSQL.
    naive = adapt or not settings.USE_TZ
    zone = connection.timezone if settings.USE_TZ else timezone.get_default_timezone()
    fromtimestamp = dt.datetime.fromtimestamp
    for e in events:
        moment: Any = fromtimestamp(e.timestamp, tz=zone)
        event_id: Any = e.event_id
        if naive:
            moment = moment.replace(tzinfo=None)
        if adapt:
            moment = str(moment)
            event_id = _column_value(event_id, native_uuid)
        yield (
            *parts[e.target],
            _ip_value(e.ip_address),
            e.user_agent,
            moment,
            event_id,
            e.visitor_hash,
        )


def _column_value(event_id: str, native_uuid: bool) -> Any:
    """The event id as the column takes it. An id that is no UUID is refused here, as
    the model field would have refused it: a data error, for splitting.py to isolate."""
    if not native_uuid and _HEX32(event_id):
        return event_id
    value = uuid.UUID(event_id)
    return value if native_uuid else value.hex


@lru_cache(maxsize=4096)
def _ip_value(ip: str | None) -> str | None:
    # As GenericIPAddressField sends it: IPv6 in its normal form, no empty string. Stored
    # addresses are anonymised (a /24 or /48): few distinct values, hence the cache.
    if not ip:
        return None
    if ":" in ip:
        with suppress(ValidationError):  # the field sends one it cannot clean as it is
            return clean_ipv6_address(ip)
    return ip
