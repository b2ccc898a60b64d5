"""The database's side of a most-viewed list: the top of the key rows (totals.py), exact.

ranking.py merges the database's totals with the views pending in Redis and in this
process; from the database it needs, at a depth ``d``, the exact totals of some keys and a
bound on the total of every other key. Neither reads history:

- all time: the first ``d`` rows of ``PageViewTotal`` by views (an index's first entries);
  any other key has at most the ``d``-th row's views (and, with as many, a later key);
- a period of up to ``MAX_LIST_DAYS`` days: the threshold algorithm over the days, each a
  list sorted by an index on ``PageViewKeyDaily``. The first ``d`` rows of every day
  (one statement) name the keys whose totals are then summed (one statement); a key named
  by no list has at most the sum, over the days with ``d`` rows, of the ``d``-th views;
- a longer period: a key's total in it is at most its all-time total, so the all-time
  list bounds it, and only the keys it names are summed over the period's days, in the
  same statement.

Each statement is written out and its rows read in one pass: at the sizes of a real list
(tens of keys), building queries costs more than the database's work (decision 45).

The work depends on the depth the answer needs (how far the lists must be read before the
``limit``-th total exceeds the bound), which is small for the skewed traffic of real sites,
not on how many days or keys are stored.

Every list is read with equal views in key order, the order of Python's strings (UTF-8
bytes: ``COLLATE "C"`` on PostgreSQL, the bytes on MySQL/MariaDB, SQLite's own), so that
a key not read that has as many views as the bound comes after a key the caller knows
(``Head.tie_key``): equal totals at the bound end the rounds (ranking.py, decision 43).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router

from .models import PageViewKeyDaily, PageViewTotal
from .totals import key_hash

MAX_LIST_DAYS = 31  # longer periods are bounded by the all-time list
BYTE_ORDER = {
    "postgresql": 'value COLLATE "C"',
    "mysql": "CAST(value AS BINARY)",
    "sqlite": "value",  # BINARY, the default collation: memcmp of the UTF-8
}


@dataclass
class _Lists:
    """What the first rows of a period's day lists tell (StoredTop._day_lists)."""

    listed: dict[str, dict[object, int]] = field(default_factory=dict)  # key -> day -> views
    full: set[object] = field(default_factory=set)  # the days whose list was cut
    bound: int = 0  # any key not read has at most this total in the period
    tie: str | None = None  # and, if equal to it, comes after this key (None: unknown)


@dataclass
class Head:
    """The database's first keys at some depth, and what it proves about the others."""

    totals: dict[str, int]  # exact totals, in the period, of the keys read
    keys: list[str]  # those keys
    bound: int  # any other key's total is at most this
    tie_key: str | None  # and, if equal to it, after this key (None: unknown)


class StoredTop:
    """The key rows of one kind (and content type, for objects) in a period."""

    def __init__(
        self, kind: str, content_type_id: int | None, first: date | None, last: date | None
    ) -> None:
        self.kind, self.content_type_id = kind, content_type_id
        self.first, self.last = first, last
        self.using = router.db_for_read(PageViewTotal) or DEFAULT_DB_ALIAS

    def identity(self, *more: Hashable) -> Hashable:
        """What tells this list apart from others (with ``more``, e.g. the limit)."""
        return (self.using, self.kind, self.content_type_id, self.first, self.last, *more)

    def _hash(self, value: str) -> str:
        return key_hash(self.kind, self.content_type_id, value)

    def _all_time(self) -> bool:
        return self.first is None and self.last is None

    def keys(self, depth: int) -> set[str]:
        """The keys the lists name in their first ``depth`` rows (one statement)."""
        if self._all_time() or not self._short():
            return {value for value, _, _ in self._all_time_head(depth)}
        return set(self._day_lists(depth).listed)

    def head(self, depth: int, extra: Iterable[str] = ()) -> Head:
        """The keys in the first ``depth`` rows of the lists, with the totals of those and
        of ``extra`` keys, and the bound on any other key's total (two statements)."""
        if self._all_time() or not self._short():
            return self._head_by_all_time(depth, extra)
        lists = self._day_lists(depth)
        # A key read on every day whose list was cut at ``depth`` has all its views in the
        # rows read (a day's list not cut holds every key with views that day).
        found = {
            key: sum(by_day.values())
            for key, by_day in lists.listed.items()
            if lists.full <= by_day.keys()
        }
        if not lists.full:
            found.update((key, 0) for key in extra if key not in found)
        missing = (lists.listed.keys() | set(extra)) - found.keys()
        return Head({**found, **self.totals(missing)}, sorted(lists.listed), lists.bound, lists.tie)

    def _head_by_all_time(self, depth: int, extra: Iterable[str]) -> Head:
        """All time, or a period bounded by the all-time list (a key's total in it is at
        most its all-time total)."""
        summed = not self._all_time()
        rows = self._all_time_head(depth, summed)
        ranked = [(value, views) for value, views, _ in rows]
        cut = len(ranked) == depth
        bound, tie = (ranked[-1][1], ranked[-1][0]) if cut else (0, None)
        if self._byte_order() is None:
            tie = None
        keys = [value for value, _ in ranked]
        # A key's total in the period is at most its all-time total: as many as the bound
        # only with as many all time, and then after the tie.
        found = {value: period for value, _, period in rows} if summed else dict(ranked)
        missing = [key for key in extra if key not in found]
        return Head({**found, **self.totals(missing)}, keys, bound, tie)

    def _all_time_head(self, depth: int, summed: bool = False) -> list[tuple[str, int, int]]:
        """The first ``depth`` all-time rows (value, all-time views, and with ``summed``
        the views in the period, else 0), most viewed first (equal views by value). The
        period's sums in the same statement: one round trip less than asking for them."""
        connection = connections[self.using]
        qn = connection.ops.quote_name
        where, params = self._where()
        sql = (
            f"SELECT key_hash, value, views FROM {qn(PageViewTotal._meta.db_table)} "
            f"WHERE {where}views > 0 "
            f"ORDER BY views DESC, {self._byte_order() or 'value'} LIMIT {int(depth)}"
        )
        period = "0"
        if summed:
            days, params_of_days = self._in_period("k")
            period = (
                f"(SELECT SUM(k.views) FROM {qn(PageViewKeyDaily._meta.db_table)} k "
                f"WHERE k.key_hash = t.key_hash{days})"
            )
            params = [*params_of_days, *params]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT t.value, t.views, {period} FROM ({sql}) t", params)
            rows = [(value, int(views), int(n or 0)) for value, views, n in cursor.fetchall()]
        # The derived table's order is not the outer statement's: sorted here, as the
        # ORDER BY sorts (the byte order is Python's, BYTE_ORDER).
        return sorted(rows, key=lambda row: (-row[1], row[0]))

    def _in_period(self, alias: str) -> tuple[str, list[Any]]:
        """The conditions (each after AND) that keep the period's days of a table."""
        ops = connections[self.using].ops
        sql, params = "", []
        for op, day in ((">=", self.first), ("<=", self.last)):
            if day is not None:
                sql += f" AND {alias}.day {op} %s"
                params.append(ops.adapt_datefield_value(day))
        return sql, params

    def totals(self, keys: Iterable[str]) -> dict[str, int]:
        """Exact totals in the period of ``keys`` (0 for keys without views): one
        statement, written out (building it with the ORM cost more than running it)."""
        by_hash = {self._hash(key): key for key in keys}
        if not by_hash:
            return {}
        connection = connections[self.using]
        qn = connection.ops.quote_name
        marks = ", ".join(["%s"] * len(by_hash))
        params: list[Any] = list(by_hash)
        if self._all_time():
            table = qn(PageViewTotal._meta.db_table)
            sql = f"SELECT key_hash, views FROM {table} WHERE key_hash IN ({marks})"
        else:
            table = qn(PageViewKeyDaily._meta.db_table)
            days, params_of_days = self._in_period("k")
            sql = (
                f"SELECT key_hash, SUM(views) FROM {table} k WHERE key_hash IN ({marks}){days} "
                "GROUP BY key_hash"
            )
            params += params_of_days
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = {h: int(n) for h, n in cursor.fetchall()}
        return {key: found.get(h, 0) for h, key in by_hash.items()}

    def _days(self) -> list[date]:
        assert self.first is not None and self.last is not None
        n = (self.last - self.first).days + 1
        return [self.first + timedelta(days=i) for i in range(max(n, 0))]

    def _short(self) -> bool:
        return (
            self.first is not None
            and self.last is not None
            and (self.last - self.first).days < MAX_LIST_DAYS
        )

    def _day_lists(self, depth: int) -> _Lists:
        """The first ``depth`` rows of each day of the period, the days whose list was cut
        there, the bound on any key not read, and its tie: one statement, its rows read in
        one pass. A key not read with as many views as the bound has, on each cut day, as
        many as that day's last row, and comes after it: after the greatest of those
        rows' keys."""
        connection = connections[self.using]
        if connection.vendor == "postgresql":
            sql, params = self._lateral_sql(depth)
        else:
            sql, params = self._union_sql(depth)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        lists = _Lists()
        listed = lists.listed
        by_day: dict[object, list[tuple[int, str]]] = {}  # each day's rows (views, key)
        # One pass that only files the rows (a comparison per row cost twice as much:
        # ~0.3 ms for 30 days of 20 rows); each day's last row is found among its own.
        for day, value, views in rows:
            days = listed.get(value)
            if days is None:
                listed[value] = {day: views}
            else:
                days[day] = views
            read = by_day.get(day)
            if read is None:
                by_day[day] = [(views, value)]
            else:
                read.append((views, value))
        for day, read in by_day.items():
            if len(read) == depth:  # cut: its last row (fewest views, greatest key) bounds
                lists.full.add(day)
                fewest = min(read)[0]
                value = max(key for n, key in read if n == fewest)
                lists.bound += fewest
                lists.tie = value if lists.tie is None else max(lists.tie, value)
        if not self._byte_order():
            lists.tie = None
        return lists

    def _byte_order(self) -> str | None:
        """The key column as an ORDER BY term that sorts as Python's strings (UTF-8
        bytes), whatever the column's collation; None on another database."""
        return BYTE_ORDER.get(connections[self.using].vendor)

    def _where(self) -> tuple[str, list[str | int]]:
        """The rows of this kind (and content type): URL and view-name rows never have
        one, and no IS NULL, which would keep PostgreSQL from reading the index (kind,
        views) in order."""
        same_type = "" if self.content_type_id is None else "content_type_id = %s AND "
        params: list[str | int] = [self.kind]
        if self.content_type_id is not None:
            params.append(self.content_type_id)
        return f"kind = %s AND {same_type}", params

    def _lateral_sql(self, depth: int) -> tuple[str, list[Any]]:
        """PostgreSQL: one subquery, run once per day (LATERAL). A UNION of one part per
        day costs more to plan (1.3-1.6 ms for 30 days) than to run."""
        connection = connections[self.using]
        table = connection.ops.quote_name(PageViewKeyDaily._meta.db_table)
        where, params = self._where()
        sql = (
            "SELECT d.n, t.value, t.views FROM generate_series(0, %s) AS d(n) "
            f"CROSS JOIN LATERAL (SELECT value, views FROM {table} WHERE {where}"
            "day = CAST(%s AS date) + d.n AND views > 0 "
            f"ORDER BY views DESC, {self._byte_order()} LIMIT {int(depth)}) AS t"
        )
        first = connection.ops.adapt_datefield_value(self.first)
        return sql, [len(self._days()) - 1, *params, first]

    def _union_sql(self, depth: int) -> tuple[str, list[Any]]:
        """One part per day (each reads the top of its day's list in an index), told apart
        by the part's number: no date to convert."""
        connection = connections[self.using]
        table = connection.ops.quote_name(PageViewKeyDaily._meta.db_table)
        where, where_params = self._where()
        part = (
            f"SELECT * FROM (SELECT {{i}} AS n, value, views FROM {table} "
            f"WHERE {where}day = %s AND views > 0 "
            f"ORDER BY views DESC, {self._byte_order() or 'value'} LIMIT {int(depth)}) AS d{{i}}"
        )
        days = self._days()
        sql = " UNION ALL ".join(part.format(i=i) for i in range(len(days)))
        params: list[Any] = []
        for day in days:
            params += [*where_params, connection.ops.adapt_datefield_value(day)]
        return sql, params
