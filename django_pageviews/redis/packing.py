"""Raw events in Redis: one list element per shipment, in a compact binary form.

One JSON list element per view cost 294 bytes of Redis memory: the user agent, the URL
and the target's parts were repeated in every view, and Redis adds ~25 bytes per
element. A shipment's views share most of them, so a shipment becomes one element::

    b"#" <views, ASCII digits> b":" <flag> <body>

The header is what CLAIM reads (``string.match``) to take whole elements up to
BATCH_SIZE views. The body is a JSON table (the distinct addresses and user agents, then
the distinct targets), then one fixed-size record per view: event id and visitor hash
as 16 raw bytes each, the timestamp as a float64 (exactly the one tracked), and the
indexes of its target, address and user agent in the table. The flag says how the table
ends: ``z``, zlib-compressed (level 1: user agents share most of their text), its end
found by the decompressor; ``p``, plain, then a newline (JSON escapes every newline
inside strings). Only the table is compressed: the records are mostly random ids, which
zlib cannot shrink, and compressing them too cost a third more CPU for 3% fewer bytes.

Elements written by earlier versions (one JSON array per view, starting with ``[``)
still drain: ``unpack`` gives them back as text, which ``wire.decode_event`` reads. An
element that cannot be read (corrupted) comes back as one unreadable record; splitting
then skips it as invalid, as it skips any unreadable raw event.

The elements are binary: they are read with ``NEVER_DECODE`` (the package's client
decodes replies as UTF-8).
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Sequence

from django_pageviews.events import PageViewEvent, Target
from django_pageviews.wire import RawEvent, encode_event

MAGIC = b"#"
ZLIB = b"z"
PLAIN = b"p"
ZLIB_LEVEL = 1  # the table of 50 views: 208 -> 86 bytes per view, ~1 us per view
ZLIB_MIN_BYTES = 256  # below this zlib saves nothing worth its CPU
# Event id, visitor hash, timestamp, then indexes of target, address, user agent.
RECORD = struct.Struct("<16s16sdHHH")
MAX_TABLE = 0xFFFF  # indexes are 16-bit: a bigger shipment is packed in parts
HEADER = re.compile(rb"#(\d+):")

NEVER_DECODE = "NEVER_DECODE"  # redis-py's option for a binary reply on a decoding client


def pack(events: Sequence[PageViewEvent]) -> list[bytes | str]:
    """The list elements of ``events``: one compact element, or one JSON element per
    event when an event id or a visitor hash is not 32 lowercase hex digits (an id
    given by a caller of buffer_page_view, say), which the compact form cannot hold."""
    if not events:
        return []
    if len(events) > MAX_TABLE // 2:
        half = len(events) // 2
        return [*pack(events[:half]), *pack(events[half:])]
    strings: dict[str | None, int] = {}
    targets: dict[Target, int] = {}
    records = []
    fromhex = bytes.fromhex
    for e in events:
        try:
            event_id, visitor = fromhex(e.event_id), fromhex(e.visitor_hash)
        except ValueError:
            return [encode_event(e) for e in events]
        if (
            len(event_id) != 16
            or len(visitor) != 16
            or event_id.hex() != e.event_id
            or visitor.hex() != e.visitor_hash
        ):
            return [encode_event(e) for e in events]
        target = targets.setdefault(e.target, len(targets))
        ip = strings.setdefault(e.ip_address, len(strings))
        ua = strings.setdefault(e.user_agent, len(strings))
        records.append(RECORD.pack(event_id, visitor, e.timestamp, target, ip, ua))
    table = json.dumps([list(strings), list(targets)], ensure_ascii=False, separators=(",", ":"))
    packed = table.encode()
    if len(packed) >= ZLIB_MIN_BYTES:
        head = b"#%d:z" % len(events)
        return [b"".join((head, zlib.compress(packed, ZLIB_LEVEL), *records))]
    return [b"".join((b"#%d:p" % len(events), packed, b"\n", *records))]


def views(element: bytes | str) -> int:
    """How many views an element holds (CLAIM reads the same header)."""
    head = element[:24]
    found = HEADER.match(head if isinstance(head, bytes) else head.encode())
    return int(found.group(1)) if found else 1


def unpack(element: bytes | str) -> list[RawEvent]:
    """The events of one element: decoded, or (an old JSON element, or one that cannot
    be read) one text record for ``wire.decode_event`` to read or refuse."""
    if isinstance(element, str):
        return [element]
    if element[:1] != MAGIC:
        return [element.decode(errors="replace")]
    try:
        return _unpack(element)
    except (ValueError, TypeError, IndexError, KeyError, struct.error, zlib.error):
        return [element.decode("latin-1")]  # unreadable: skipped as invalid, logged


def unpack_all(elements: Sequence[bytes | str]) -> list[RawEvent]:
    return [e for element in elements for e in unpack(element)]


def _unpack(element: bytes) -> list[RawEvent]:
    found = HEADER.match(element)
    if found is None:
        raise ValueError("no header")
    start = found.end()
    flag, body = element[start : start + 1], element[start + 1 :]
    if flag == ZLIB:  # the compressed table, then the records
        table = zlib.decompressobj()
        strings, target_parts = json.loads(table.decompress(body))
        if not table.eof:
            raise ValueError("truncated table")
        records = table.unused_data
    elif flag == PLAIN:
        text, _, records = body.partition(b"\n")
        strings, target_parts = json.loads(text)
    else:
        raise ValueError("unknown flag")
    targets = [Target(*parts) for parts in target_parts]
    # tuple.__new__ directly, every field given (the last two, in memory only, as their
    # defaults): the named tuple's own __new__ is a Python function, whose call cost a
    # third of the decoding.
    new = tuple.__new__
    events: list[RawEvent] = [
        new(PageViewEvent, (e.hex(), ts, targets[t], strings[ip], strings[ua], v.hex(), None, ""))
        for e, v, ts, t, ip, ua in RECORD.iter_unpack(records)
    ]
    if len(events) != int(found.group(1)):
        raise ValueError("view count does not match")
    return events
