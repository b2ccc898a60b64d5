"""Sorted per-day lists of views not yet acknowledged, which keep report reads bounded.

A report (a period, a daily series, a most-viewed list) asks about days, and the live
totals of ``dims`` have no day. Reading every pending count field instead costs as much as
there are pending pages (200,000 pages: seconds). So each shipment also adds its views to
small sorted sets, one per day and kind:

- ``u|<day>``: URL -> views; ``v|<day>``: view name -> views;
- ``o|<model>|<field>|<day>``: object (named by that field's value) -> views.

Each list is kept as LIST_BUCKETS small sorted sets ``top:<name>:<n>`` (member_bucket), a
list of an earlier version as one set ``top:<name>`` until its members leave it
(redis.scripts.LISTS). The registry ``top`` lists every list with its views, and ACK takes
a batch out of both, as it does from ``dims``. Scores are minus the views: ZRANGE from 0
then lists the most viewed first, and equal counts in member order, which is Python's
string order (the members are compared as UTF-8 bytes). A period read asks a few sets for
one member; a most-viewed list reads the first entries of each set of each list
(SNAPSHOT_LISTS, within a budget of work per call) and merges them with the database's
(ranking.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from .events import Target
from .wire import dimension, dimension_slot, object_key, parse_count_field

if TYPE_CHECKING:
    from .redis.snapshots import ListsSnapshot

URL = "u"
VIEW = "v"
SEP = "|"
SHARD_MARK = "#"  # "<shard>#<name>": a list of a shard other than 0, as a live read names it
DAY_LENGTH = 10  # YYYY-MM-DD, at the end of every list name
# Each list is spread over this many sorted sets (by its members' SHA-1), each kept in
# Redis's compact encoding while it holds at most 128 members (zset-max-listpack-entries,
# Redis 7; zset-max-ziplist-entries, 6.2): decision 28.
LIST_BUCKETS = 64
# Entries read plus members looked up by one SNAPSHOT_LISTS call at most (decision 43):
# ~1.4 us an entry and ~1.5-2.2 us a member of Redis's time on the shared 2-core machine,
# so that a call takes ~20-30 ms at most; ranking.py plans its rounds within it, and the
# script refuses a call that could do more.
READ_BUDGET = 12_000


def member_bucket(kind: str, member: str) -> int:
    """The set of a list of ``kind`` that holds ``member``'s views: its live total's bucket
    (wire.dimension_slot) modulo LIST_BUCKETS, as redis.scripts.LISTS computes it."""
    if kind in (URL, VIEW):
        name = kind + member
    else:
        _, model, field = kind.split(SEP)
        name = dimension(object_key(model, field, member))
    return dimension_slot(name)[0] % LIST_BUCKETS


def object_kind(model: str, field: str) -> str:
    return SEP.join(("o", model, field))


def list_name(kind: str, day: date) -> str:
    return f"{kind}{SEP}{day.isoformat()}"


def split_name(name: str) -> tuple[str, date]:
    """(kind, day) of a list name (of any shard: ``shard_name``)."""
    kind = name[: -DAY_LENGTH - 1]
    return kind[kind.find(SHARD_MARK) + 1 :], date.fromisoformat(name[-DAY_LENGTH:])


def shard_name(shard: int, name: str) -> str:
    """A list's name in a live read of several shards: each shard's copy of a list is a
    list of its own there (a key's pending views are their sum; ranking.py's bounds add
    up over lists). Shard 0's keep their names. No kind holds the mark (a kind is "u",
    "v" or "o|<model label>|<field name>")."""
    return name if shard == 0 else f"{shard}{SHARD_MARK}{name}"


def name_shard(name: str) -> int:
    """The shard of a list named by ``shard_name``."""
    kind = name[: -DAY_LENGTH - 1]
    mark = kind.find(SHARD_MARK)
    return int(kind[:mark]) if mark >= 0 else 0


def kinds(target: Target) -> list[tuple[str, str]]:
    """(kind, member) of every list a view of ``target`` counts in."""
    found = [(URL, target.url)]
    if target.view_name:
        found.append((VIEW, target.view_name))
    if target.model:
        found.append((object_kind(target.model, target.field), target.value))
    return found


def list_entries(counts: Iterable[tuple[str, int]]) -> Counter[tuple[str, str]]:
    """(list name, member) -> views, of pending count fields (other fields have none)."""
    views: list[tuple[tuple[date, Target], int]] = []
    for field, n in counts:
        try:
            views.append((parse_count_field(field), n))
        except (ValueError, TypeError):
            continue
    return entries(views)


def entries(views: Iterable[tuple[tuple[date, Target], int]]) -> Counter[tuple[str, str]]:
    """(list name, member) -> views, of views by (day, target)."""
    found: Counter[tuple[str, str]] = Counter()
    days: dict[date, str] = {}
    for (day, target), n in views:
        iso = days.get(day) or days.setdefault(day, SEP + day.isoformat())
        found[(URL + iso, target.url)] += n
        if target.view_name:
            found[(VIEW + iso, target.view_name)] += n
        if target.model:
            found[(object_kind(target.model, target.field) + iso, target.value)] += n
    return found


@dataclass
class PendingLists:
    """Views not yet in the database, as a live read by day sees them: Redis's lists
    (``snap``, None without Redis) less the committed claims' views (``taken``), and this
    process's own views by day and target (``local``)."""

    snap: ListsSnapshot | None
    taken: Counter[tuple[str, str]]
    local: Counter[tuple[date, Target]]

    def names(self) -> list[str]:
        return list(self.snap.tops) if self.snap is not None else []

    def top(self, name: str) -> list[tuple[str, int]]:
        """The list's entries read, most viewed first (committed claims still in)."""
        return self.snap.tops[name] if self.snap is not None else []

    def bound(self, name: str) -> tuple[int, str | None]:
        """(views, member): a member not in ``top`` has at most that many views in the
        list and, with as many, comes after that member; (0, None): ``top`` is the whole
        list (redis.snapshots.snapshot_lists)."""
        return self.snap.bounds[name] if self.snap is not None else (0, None)

    def views(self, name: str, member: str) -> int | None:
        """Views of ``member`` in the list, None if the snapshot was not asked for them."""
        if self.snap is None:
            return None
        if member not in self.snap.asked.get(name, ()):
            return None
        return self.snap.views.get((name, member), 0) - self.taken[(name, member)]
