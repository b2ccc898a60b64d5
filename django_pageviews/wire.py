"""The compact text forms events and counts take in Redis.

A pending count is a hash field naming (day, target); a "dimension" is what a read asks
for (an object, a URL, a view name, a combination, or everything) and has its own running
total, so that a live read costs one HMGET however many pages are pending. Target parts
never contain the two separator characters: tracking percent-encodes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from .events import RECORD, UNIT, PageViewEvent, Target

# A raw event as a claim holds it: decoded already (redis/packing.py), or text to decode (the
# JSON of earlier versions, set-aside records, or a record that cannot be read).
RawEvent = str | PageViewEvent

TOTAL = "t"
# The live totals other than TOTAL are spread over this many small hashes (a power of two
# up to 65,536), each kept in Redis's compact encoding while it holds at most 128 fields
# (hash-max-listpack-entries, Redis 7; hash-max-ziplist-entries, 6.2): decision 28.
DIM_BUCKETS = 1024
DIGEST_CACHE_SIZE = 65_536  # live totals whose digests a drain keeps (~200 B each)
SKIPPED = "skipped"  # not a date: never parses as a count field
# A visitor of a day (counts-only mode: no raw event carries the hash to the drain). Not a
# date either; one letter, because Redis holds one such field per visitor pending.
VISITOR = "V"


def count_field(day: date, target: Target) -> str:
    return UNIT.join((day.isoformat(), *target))


def parse_count_field(field: str) -> tuple[date, Target]:
    day, *parts = field.split(UNIT)
    return date.fromisoformat(day), Target(*parts)


def skipped_field(day: date, reason: str) -> str:
    """A pending count of requests not counted as views; it rides with the views to the
    database (in the same claim and transaction) and has no dimension."""
    return UNIT.join((SKIPPED, day.isoformat(), reason))


def parse_skipped_field(field: str) -> tuple[date, str] | None:
    """(day, reason) of a skipped-requests field, None for any other field."""
    if not field.startswith(SKIPPED + UNIT):
        return None
    _, day, reason = field.split(UNIT)
    return date.fromisoformat(day), reason


def visitor_field(day: date, visitor_hash: str) -> str:
    """A visitor seen on ``day``: a pending field that rides with the views to the
    database (in the same claim and transaction), where a visitor is counted once a day
    however many fields name it. Its number (shipments that saw it) is not used."""
    return UNIT.join((VISITOR, day.isoformat(), visitor_hash))


def parse_visitor_field(field: str) -> tuple[date, str] | None:
    """(day, visitor hash) of a visitor field, None for any other field."""
    if not field.startswith(VISITOR + UNIT):
        return None
    _, day, visitor_hash = field.split(UNIT)
    return date.fromisoformat(day), visitor_hash


def counts_views(field: str) -> bool:
    """Whether a pending field's number is views (not skipped requests or a visitor)."""
    return not field.startswith((SKIPPED + UNIT, VISITOR + UNIT))


@dataclass
class PendingFields:
    """Pending fields read, by kind: views by (day, target), requests not counted by
    (day, reason), and the visitors seen by (day, hash)."""

    totals: Counter[tuple[date, Target]] = dataclasses.field(default_factory=Counter)
    skipped: Counter[tuple[date, str]] = dataclasses.field(default_factory=Counter)
    visitors: set[tuple[date, str]] = dataclasses.field(default_factory=set)

    def add(self, name: str, n: int) -> None:
        """Add one field; ValueError (or TypeError) if it cannot be read."""
        if (day_reason := parse_skipped_field(name)) is not None:
            self.skipped[day_reason] += n
        elif (day_visitor := parse_visitor_field(name)) is not None:
            self.visitors.add(day_visitor)
        else:
            self.totals[parse_count_field(name)] += n


def object_key(model: str, field: str, value: str) -> str:
    return UNIT.join((model, field, value))


def dimension(obj: str | None = None, url: str | None = None, view: str | None = None) -> str:
    parts = [f"{tag}{v}" for tag, v in (("o", obj), ("u", url), ("v", view)) if v is not None]
    return RECORD.join(parts) if parts else TOTAL


def dimensions(target: Target) -> list[str]:
    """Every dimension a view of ``target`` adds to: what ``dimension`` names for each
    combination of its object (if any), URL and view name, written out because the
    producer asks it for every distinct page it ships."""
    u, v = "u" + target.url, "v" + target.view_name
    uv = u + RECORD + v
    if not target.model:
        return [TOTAL, u, v, uv]
    o = "o" + UNIT.join((target.model, target.field, target.value))
    return [TOTAL, u, v, uv, o, o + RECORD + u, o + RECORD + v, o + RECORD + uv]


@lru_cache(maxsize=DIGEST_CACHE_SIZE)
def dimension_slot(name: str) -> tuple[int, bytes]:
    """(bucket, field) of a live total other than TOTAL: the first 8 bytes of its name's
    SHA-1 (the field), and their first 4 modulo DIM_BUCKETS (the bucket). The Lua scripts
    compute the same (redis.scripts.DIMS). Two names with the same 8 bytes would share a
    total: about n**2 / 2**65 for n totals pending at once (3e-8 for a million). Cached: a
    drain acknowledges the same pages' totals claim after claim, and a SHA-1 cost more
    than the rest of their bookkeeping."""
    digest = hashlib.sha1(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") % DIM_BUCKETS, digest[:8]


def dimension_totals(counts: Iterable[tuple[str, int]]) -> Counter[str]:
    """Dimension totals of pending count fields (unreadable fields have none)."""
    totals: Counter[str] = Counter()
    for field, n in counts:
        try:
            target = parse_count_field(field)[1]
        except (ValueError, TypeError):
            continue
        for d in dimensions(target):
            totals[d] += n
    return totals


def encode_event(e: PageViewEvent) -> str:
    return json.dumps(
        [
            e.event_id,
            e.timestamp,
            *e.target,
            e.ip_address,
            e.user_agent,
            e.visitor_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_event(raw: RawEvent) -> PageViewEvent:
    """Raises ValueError (or TypeError) for anything that is not an encoded event."""
    if not isinstance(raw, str):
        return raw
    (event_id, ts, url, view, model, field, value, ip, ua, vhash) = json.loads(raw)
    if not isinstance(ts, int | float) or not isinstance(event_id, str):
        raise ValueError("not an event")
    return PageViewEvent(event_id, float(ts), Target(url, view, model, field, value), ip, ua, vhash)
