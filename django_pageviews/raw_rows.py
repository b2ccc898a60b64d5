"""Raw rows in bulk: skip those stored already, write the rest the database's fastest way.

Raw rows in bulk: which events are stored already, and writing the others, in each
database's fastest way that stays inside the caller's transaction.

The ORM's ``bulk_create`` built a model instance per view and prepared each of its eleven
fields through the field API: about 60 us a view, more than everything else the drain does
(docs/profiles/drain-before.txt). Rows are plain tuples here, built with what is the same
for every view of a target computed once per target. PostgreSQL takes them through
``COPY ... FROM STDIN`` in its binary format (psycopg 3), made here (``_binary_rows``),
the others through one ``executemany`` of a plain INSERT (sqlite3 runs it in C;
mysqlclient turns it into multi-row INSERTs). Either way the
rows go through the table's constraints and triggers as any INSERT would: an event id
stored twice still fails the transaction, and a value the database refuses still fails it
for its data (redis/splitting.py then isolates the record).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any, cast

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
_HEXISH = re.compile("[0-9a-f]*").fullmatch

# PostgreSQL's binary COPY format: a signature, flags and header extension (0, 0); then
# per row the number of fields and each field as its length (-1: NULL) and bytes; then -1.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = struct.pack(">h", -1)
COPY_CHUNK = 1000  # rows per write: the server parses a chunk while the next one is made
_NULL = struct.pack(">i", -1)
_FIELDS = struct.pack(">h", len(COLUMNS))
_INT4 = struct.Struct(">ii")
# timestamp (8 bytes: microseconds since 2000-01-01 UTC), event id (16), visitor hash.
_TAIL = struct.Struct(">iqi16si")
_PG_EPOCH = 946_684_800  # 2000-01-01 UTC, in Unix seconds
_PGSQL_AF = {4: 2, 6: 3}  # PostgreSQL's inet families (PGSQL_AF_INET, PGSQL_AF_INET6)


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
    qn = connection.ops.quote_name
    table = qn(PageView._meta.db_table)
    names = ", ".join(qn(c) for c in COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's cursor wrapper hides psycopg's copy(): the driver's own cursor has
            # it, and the errors it raises are made Django's (a DataError for a refused
            # value, as the INSERT would raise) as the wrapper would. Chunks are sent as
            # they are made: the server takes in one while the next is made.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                for block in _binary_rows(events, resolved):
                    copy.write(block)
            return
        rows = _rows(events, resolved, using)
        if connection.vendor == "mysql":
            prefix = f"INSERT INTO {table} ({names}) VALUES ".encode()
            for statement in _mysql_inserts(prefix, rows, connection.connection.literal):
                cursor.execute(cast(Any, statement))  # mysqlclient takes bytes as they are
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


def _binary_rows(
    events: Sequence[PageViewEvent], resolved: dict[Target, Resolved]
) -> Iterator[bytes]:
    """The rows of ``events`` in PostgreSQL's binary COPY format, COPY_CHUNK rows a chunk
    (the first opens with the signature, the last ends with the trailer).

    What is the same for every view of a target, address and user agent (six of the nine
    fields) is encoded once; per view, one struct packs the timestamp, the event id and
    the visitor hash's length. psycopg's write_row adapted each of the nine values of each
    row through its dumpers: about 3 us a view of the drain's CPU, and text that the
    server parsed again (a timestamp, a UUID, an address). The values are those that the
    ORM stores: the moment of the timestamp (as ``datetime.fromtimestamp`` rounds it, to
    the microsecond, half to even), the address as GenericIPAddressField cleans it. A
    value the column cannot hold is refused by the server, or here (an event id that is
    no UUID, an address that is none: ValueError), for its data either way."""
    heads: dict[tuple[Target, str | None, str | None], bytes] = {}
    pack, modf, fromhex = _TAIL.pack, math.modf, bytes.fromhex
    parts: list[bytes] = [COPY_SIGNATURE]
    for start in range(0, len(events), COPY_CHUNK):
        for e in events[start : start + COPY_CHUNK]:
            key = (e.target, e.ip_address, e.user_agent)
            head = heads.get(key)
            if head is None:
                head = heads[key] = _head(e.target, resolved[e.target], e.ip_address, e.user_agent)
            event_id, visitor = e.event_id, e.visitor_hash.encode()
            try:
                raw_id = fromhex(event_id)  # 32 hex digits as events carry them: 16 bytes
            except ValueError:
                raw_id = b""
            if len(raw_id) != 16:  # any other form of a UUID (or a ValueError)
                raw_id = uuid.UUID(event_id).bytes
            # As datetime.fromtimestamp rounds (the fraction to the microsecond, half to
            # even): microseconds from 2000-01-01 UTC.
            fraction, whole = modf(e.timestamp)
            micros = (int(whole) - _PG_EPOCH) * 1_000_000 + round(fraction * 1e6)
            parts += (head, pack(8, micros, 16, raw_id, len(visitor)), visitor)
        yield b"".join(parts)
        parts = []
    yield COPY_TRAILER


def _head(target: Target, resolved: Resolved, ip: str | None, user_agent: str | None) -> bytes:
    """The field count and the first six fields of a row (COLUMNS order), binary."""
    content_type_id, object_id = resolved
    fields = [
        _INT4.pack(4, content_type_id) if content_type_id is not None else _NULL,
        _text(object_id or None),
        _text(target.url),
        _text(target.view_name or None),
        _inet(ip),
        _text(user_agent),
    ]
    return b"".join((_FIELDS, *fields))


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return struct.pack(">i", len(data)) + data


@lru_cache(maxsize=4096)
def _inet(ip: str | None) -> bytes:
    """An address as PostgreSQL's inet type receives it (none for an empty one, as
    GenericIPAddressField sends it); one with a prefix length (as inet's text form
    allows) keeps it. Stored addresses are anonymised (a /24 or /48): few distinct values,
    hence the cache (parsing one costs ~10 us)."""
    if not ip:
        return _NULL
    address: Any = ipaddress.ip_interface(ip)
    packed: bytes = address.packed
    data = bytes((_PGSQL_AF[address.version], address.network.prefixlen, 0, len(packed)))
    return struct.pack(">i", len(data) + len(packed)) + data + packed


def _rows(
    events: Sequence[PageViewEvent], resolved: dict[Target, Resolved], using: str
) -> Iterator[tuple[Any, ...]]:
    """Row tuples in COLUMNS order, values as Django's backend would send them (the
    timestamp as its text, the event id as the column stores it), made as they are sent:
    the database takes in the rows already sent while the next ones are made."""
    parts: dict[Target, tuple[int | None, str | None, str, str | None]] = {}
    for target in {e.target for e in events}:
        content_type_id, object_id = resolved[target]
        parts[target] = (content_type_id, object_id or None, target.url, target.view_name or None)
    connection = connections[using]
    native_uuid = connection.features.has_native_uuid_field
    # As Django stores a moment: in the connection's zone (UTC) with USE_TZ, else the
    # site's local time; as text (naive).
    zone = connection.timezone if settings.USE_TZ else timezone.get_default_timezone()
    fromtimestamp = dt.datetime.fromtimestamp
    for e in events:
        moment = str(fromtimestamp(e.timestamp, tz=zone).replace(tzinfo=None))
        event_id = _column_value(e.event_id, native_uuid)
        yield (
            *parts[e.target],
            _ip_value(e.ip_address),
            e.user_agent,
            moment,
            event_id,
            e.visitor_hash,
        )


def _mysql_inserts(
    prefix: bytes, rows: Iterator[tuple[Any, ...]], literal: Callable[[Any], bytes]
) -> Iterator[bytes]:
    """Multi-row INSERT statements of ROWS_PER_STATEMENT rows, each value quoted by the
    driver's own ``literal`` (as its executemany quotes them), but once per distinct
    value of what rows share (a target's fields, an address, a user agent): mysqlclient's
    executemany quoted the nine values of every row in Python, about 10 us a view. What
    each row has of its own is text made here (a timestamp, an event id of hex digits or
    a UUID's) or a visitor hash of hex digits, quoted as they are; any other visitor hash
    goes through ``literal``."""
    heads: dict[tuple[Any, ...], bytes] = {}
    values: list[bytes] = []
    for row in rows:
        shared, (moment, event_id, visitor) = row[:6], row[6:]
        head = heads.get(shared)
        if head is None:
            head = heads[shared] = b"(" + b",".join(literal(v) for v in shared)
        hashed = b"'%s'" % visitor.encode() if _HEXISH(visitor) else literal(visitor)
        values.append(b"%s,'%s','%s',%s)" % (head, moment.encode(), str(event_id).encode(), hashed))
        if len(values) == ROWS_PER_STATEMENT:
            yield prefix + b",".join(values)
            values = []
    if values:
        yield prefix + b",".join(values)


def _column_value(event_id: str, native_uuid: bool) -> Any:
    """The event id as the column takes it. An id that is no UUID is refused here, as
    the model field would have refused it: a data error, for redis/splitting.py to isolate."""
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
