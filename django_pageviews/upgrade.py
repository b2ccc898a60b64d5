"""What ``migrate`` does to the rows of a 0.2.x database (migration 0003).

What ``migrate`` does to the rows of a 0.2.x database (migration 0003): every view is
kept and counted in the daily and key totals, and nothing stays stored that 1.0 would
not store.

0.2.x counted views with ``COUNT(*)`` over its one table: each row is one view. So:

- **Totals.** Each row adds one view to the daily row of its day (the site's calendar,
  events.local_day) and target, then the key rows are summed from the daily rows
  (totals.rebuild): ``get_view_count``, ``get_daily_views``, the popular lists and the
  dashboard give what 0.2.x gave. The rows stay as raw rows.
- **URLs** are stored as 1.0 stores them (the trailing-slash rule of paths.normalize_url,
  then events.stored_url: separators encoded, cut to the column), so that a read by URL
  finds an old URL's views too, and a page's old and new views are one count.
- **Event ids**: each row gets its own, made by the database (the drain's duplicate key).
- **Session keys** are credentials. 0.2.x's ``unique_view_count`` counted an object's
  distinct session keys; each key is replaced by a keyed hash in ``visitor_hash`` (what
  1.0's ``unique_view_count`` counts) with a random key made for this migration and never
  stored: the same count, and nothing left that can be used or checked against a key.
- **Addresses** as 1.0 stores new ones (privacy.stored_ip): cut to their network
  (/24, /48) by default, removed with ``PAGEVIEW_ANONYMIZE_IP = "omit"``, kept whole only
  with ``PAGEVIEW_STORE_IP``. On PostgreSQL in SQL (inet); on SQLite by the function new
  views go through, registered on the connection; on MySQL/MariaDB IPv4 in SQL and IPv6
  by that function.

Each step reads the table in chunks of ``CHUNK`` ids and says how far it is. All of it
runs in the migration's transaction: an interrupted upgrade leaves the 0.2.x rows as
they were (on MySQL/MariaDB, whose schema changes are not transactional, this data step
is still one transaction, and running ``migrate`` again repeats it from the start).
"""

from __future__ import annotations

import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from django.apps.registry import Apps
from django.conf import settings
from django.db import connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.models import Count, Max, Min, Model, Q
from django.db.models.functions import Length, TruncDate
from django.utils import timezone

from .conf import conf
from .events import URL_MAX_BYTES, VISITOR_HASH_LENGTH, local_day, stored_url
from .paths import APPEND, STRIP, normalize_url, trailing_slash_mode
from .privacy import IPV4_PREFIX, IPV6_PREFIX, anonymize_ip
from .storage import target_hash
from .totals import rebuild
from .upsert import upsert_rollups

CHUNK = 50_000
APP = "django_pageviews"
CUT_IP = "django_pageviews_cut_ip"


def upgrade_rows(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Migration 0003's forward step (nothing to do on a new database)."""
    using = schema_editor.connection.alias
    model = apps.get_model(APP, "PageView")
    rows = model._default_manager.using(using)
    bounds = rows.aggregate(first=Min("id"), last=Max("id"))
    if bounds["first"] is None:
        return
    if _brought_over(rows, bounds["first"]):
        sys.stdout.write("\n    already brought over by another migrate run: nothing to do.")
        return
    upgrade = _Upgrade(model, using, bounds["first"], bounds["last"], rows.count())
    upgrade.run()
    rebuild(using, apps=apps)
    upgrade.say("key totals summed from the daily rows.")


def _brought_over(rows: Any, first: int) -> bool:
    """Whether another ``migrate`` brought the rows over while this one waited. Two runs
    at once (two deploys, or a retry while the first still runs) both planned 0003, and
    the second added every view to the totals again. Locking the first row makes the
    second wait for the first's transaction; then the row's event id (every row gets one
    in the same transaction) says whether it committed. SQLite has no row locks, but
    one writer: a run that read before the other committed fails rather than write."""
    first_row = rows.select_for_update().filter(id=first)
    return first_row.values_list("event_id", flat=True).get() is not None


class _Upgrade:
    def __init__(self, model: type[Model], using: str, first: int, last: int, n: int) -> None:
        self.model, self.using, self.first, self.last = model, using, first, last
        self.connection = connections[using]
        self.qn = self.connection.ops.quote_name
        self.table = self.qn(model._meta.db_table)
        self.secret = secrets.token_hex(32)  # for this migration only (session keys)
        self.say(f"bringing {n:,} page views of django-pageviews 0.2.x over:")

    def say(self, message: str) -> None:
        sys.stdout.write(f"\n    {message}")
        sys.stdout.flush()

    def run(self) -> None:
        # The URLs before the totals, which group by them; the totals before the rewrite,
        # which leaves a dead version of each row in the table (PostgreSQL), slowing every
        # later read.
        steps: list[tuple[str, Callable[[int, int], None]]] = [
            ("URLs", self._urls),
            ("daily totals", self._daily_totals),
            ("event ids, session keys, addresses", self._rewrite),
        ]
        truncating = not conf.STORE_IP and conf.ANONYMIZE_IP == "truncate"
        if self.connection.vendor == "mysql" and truncating:  # the others cut IPv6 in SQL
            steps.append(("IPv6 addresses", self._ipv6_addresses))
        for name, step in steps:
            started = time.monotonic()
            for lo in range(self.first, self.last + 1, CHUNK):
                hi = min(lo + CHUNK - 1, self.last)
                step(lo, hi)
                done = (hi - self.first + 1) / (self.last - self.first + 1)
                self.say(f"{name}: {done:.0%} ({time.monotonic() - started:.0f} s)")

    def _rows(self, lo: int, hi: int) -> Any:
        return self.model._default_manager.using(self.using).filter(id__gte=lo, id__lte=hi)

    def _urls(self, lo: int, hi: int) -> None:
        """URLs as new views store them: under the site's trailing-slash rule
        (paths.normalize_url), separators encoded, cut to the column. Without the rule,
        0.2.x's views of ``/about`` were found by no read (reads look up ``/about/``) and
        new views of the page were counted apart from them. By id: on MySQL/MariaDB a
        match by value would ignore case."""
        odd = Q(length__gt=URL_MAX_BYTES // 4) | Q(url__contains="\x1f") | Q(url__contains="\x1e")
        if self.connection.vendor != "postgresql":  # PostgreSQL's text cannot hold NUL
            odd |= Q(url__contains="\x00")
        mode = trailing_slash_mode()
        if mode == APPEND:
            odd |= Q(url__startswith="/") & ~Q(url__endswith="/")
        elif mode == STRIP:
            odd |= Q(url__endswith="/") & ~Q(url="/")
        found = self._rows(lo, hi).annotate(length=Length("url")).filter(odd)
        changed = [
            (stored, pk)
            for pk, url in found.values_list("id", "url").iterator()
            if (stored := stored_url(normalize_url(url))) != url
        ]
        # One statement per row, sent as a batch (bulk_update's CASE cost ~400 us a row
        # in building its expressions alone)
        sql = f"UPDATE {self.table} SET {self.qn('url')} = %s WHERE {self.qn('id')} = %s"
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, changed)

    def _rewrite(self, lo: int, hi: int) -> None:
        """Each row's event id, its session key's hash, its IPv4 address as stored: one
        statement, so each row is written once."""
        qn, vendor = self.qn, self.connection.vendor
        key, ip = qn("session_key"), qn("ip_address")
        n = VISITOR_HASH_LENGTH
        if vendor == "postgresql":  # inet: each family cut to its network
            made = "gen_random_uuid()"
            keyed = f"substr(encode(sha256(convert_to(%s || {key}, 'UTF8')), 'hex'), 1, {n})"
            bits = f"CASE WHEN family({ip}) = 4 THEN {IPV4_PREFIX} ELSE {IPV6_PREFIX} END"
            full = f"CASE WHEN family({ip}) = 4 THEN 32 ELSE 128 END"
            cut = f"set_masklen(network(set_masklen({ip}, {bits})), {full})"
        elif vendor == "mysql":  # text: IPv4 here, IPv6 by _ipv6_addresses
            native = self.connection.features.has_native_uuid_field
            made = "UUID()" if native else "REPLACE(UUID(), '-', '')"
            keyed = f"LEFT(SHA2(CONCAT(%s, {key}), 256), {n})"
            ipv4 = f"CONCAT(SUBSTRING_INDEX({ip}, '.', 3), '.0')"
            cut = f"CASE WHEN {ip} LIKE '%%:%%' THEN {ip} ELSE {ipv4} END"
        else:  # SQLite: the function new views go through, registered on the connection
            made = "lower(hex(randomblob(16)))"
            keyed = f"substr(SHA256(%s || {key}), 1, {n})"  # Django registers SHA256
            raw = self.connection.connection
            raw.create_function(CUT_IP, 1, _cut_ip, deterministic=True)
            cut = f"{CUT_IP}({ip})"
        if conf.STORE_IP:
            address = ip
        elif conf.ANONYMIZE_IP == "truncate":
            address = cut
        else:
            address = "NULL"
        sql = (
            f"UPDATE {self.table} SET {qn('event_id')} = {made}, "
            f"{qn('visitor_hash')} = CASE WHEN {key} <> '' THEN {keyed} ELSE '' END, "
            f"{key} = NULL, {ip} = {address} WHERE {qn('id')} BETWEEN %s AND %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [self.secret, lo, hi])

    def _ipv6_addresses(self, lo: int, hi: int) -> None:
        """MySQL/MariaDB: IPv6 addresses cut by the function new views go through."""
        ipv6 = self._rows(lo, hi).filter(ip_address__contains=":").values_list("id", "ip_address")
        changed = [
            self.model(id=pk, ip_address=cut)
            for pk, address in ipv6.iterator()
            if (cut := anonymize_ip(address)) != address
        ]
        self.model._default_manager.using(self.using).bulk_update(
            changed, ["ip_address"], batch_size=500
        )

    def _daily_totals(self, lo: int, hi: int) -> None:
        """Each row one view of its target on its day, added to the daily rows."""
        views: Counter[tuple[date, int | None, str, str, str]] = Counter()
        for day, content_type_id, object_id, url, view_name, n in self._counted(lo, hi):
            if content_type_id is None or object_id is None:
                content_type_id, object_id = None, ""
            views[(day, content_type_id, object_id, url, view_name or "")] += n
        rows = [
            (day, target_hash(ct, oid, url, name), ct, oid, url, name, n)
            for (day, ct, oid, url, name), n in views.items()
        ]
        upsert_rollups(rows, self.using)

    def _counted(self, lo: int, hi: int) -> Iterable[tuple[Any, ...]]:
        """(day, content type, object id, url, view name, views) of the chunk's rows:
        grouped by the database, except on MySQL/MariaDB, where the site's calendar day
        would need the server's time zone tables (CONVERT_TZ), often not loaded."""
        fields = ("content_type_id", "object_id", "url", "view_name")
        if self.connection.vendor == "mysql":
            found = self._rows(lo, hi).values_list("timestamp", *fields)
            return ((_day(timestamp), *rest, 1) for timestamp, *rest in found.iterator())
        zone = timezone.get_default_timezone() if settings.USE_TZ else None
        by_day = self._rows(lo, hi).annotate(day=TruncDate("timestamp", tzinfo=zone))
        grouped: Iterable[tuple[Any, ...]] = (
            by_day.values_list("day", *fields).annotate(n=Count("id")).order_by()
        )
        return grouped


def _cut_ip(address: str | None) -> str | None:
    return None if address is None else anonymize_ip(address)


def _day(timestamp: datetime) -> date:
    """The day 1.0 counts a view of this time for (naive times are the site's own)."""
    if timezone.is_aware(timestamp):
        return local_day(timestamp.timestamp())
    return timestamp.date()
