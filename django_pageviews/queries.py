"""The read API: stored totals plus views not yet written (live counts).

A count of one object, URL or view name reads its all-time row (totals.py): one indexed
row, however long the history. Other combinations sum the daily rows that match.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, overload

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import Model, Q, Sum

from . import live
from .events import Target, stored_url
from .models import PageViewDaily, PageViewTotal
from .objects import is_object, lookup_values, model_label
from .paths import normalize_url
from .totals import OBJECT, URL, VIEW, key_hash
from .wire import dimension, object_key


def _object_dims(obj: Model, url: str | None = None, view: str | None = None) -> list[str]:
    label = model_label(type(obj))
    return [dimension(object_key(label, f, v), url, view) for f, v in lookup_values(obj)]


def get_view_count(
    obj: Model | None = None, url: str | None = None, view_name: str | None = None
) -> int:
    """Views of everything that matches all the given criteria (all views if none)."""
    if url is not None:
        url = stored_url(normalize_url(url))  # the rule the URL was stored by
    dims = (
        _object_dims(obj, url, view_name) if obj is not None else [dimension(None, url, view_name)]
    )

    def matches(t: Target) -> bool:
        return (
            (obj is None or is_object(t, obj))
            and (url is None or t.url == url)
            and (view_name is None or t.view_name == view_name)
        )

    hashed = _one_key(obj, url, view_name)
    if hashed is None:
        stored, local, remote = live.read(lambda: _stored(obj, url, view_name), dims)
    else:
        one: str = hashed
        stored, local, remote = live.read(lambda: _total(one), dims, lambda f: _total(one, f))
    return (stored or 0) + sum(n for t, n in local.items() if matches(t)) + sum(remote.values())


def _one_key(obj: Model | None, url: str | None, view_name: str | None) -> str | None:
    """The key whose all-time row holds the views matching the criteria, if one does."""
    if obj is not None and url is None and view_name is None:
        content_type = ContentType.objects.get_for_model(obj)
        return key_hash(OBJECT, content_type.pk, str(obj.pk))
    if obj is None and url is not None and view_name is None:
        return key_hash(URL, None, url)
    if obj is None and url is None and view_name:
        return key_hash(VIEW, None, view_name)
    return None


def _stored(obj: Model | None, url: str | None, view_name: str | None) -> int | None:
    """The stored views matching criteria that no one key's all-time row holds."""
    if obj is None and url is None:  # everything: every view has a URL
        everything: int | None = PageViewTotal.objects.filter(kind=URL).aggregate(n=Sum("views"))[
            "n"
        ]
        return everything
    query = Q()
    if obj is not None:
        query &= Q(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))
    if url is not None:
        query &= Q(url=url)
    if view_name is not None:
        query &= Q(view_name=view_name)
    matching: int | None = PageViewDaily.objects.filter(query).aggregate(n=Sum("views"))["n"]
    return matching


@overload
def _total(hashed: str) -> int | None: ...


@overload
def _total(hashed: str, fence: live.Fence) -> tuple[int | None, bool]: ...


def _total(hashed: str, fence: live.Fence | None = None) -> int | None | tuple[int | None, bool]:
    """One key's all-time views (None: no row): the statement written out, as the ORM's
    ``.first()`` cost more to build (and added an ORDER BY) than the indexed read. With
    a ``fence`` (live.py), the same statement selects it too: (views, its answer)."""
    using = router.db_for_read(PageViewTotal) or DEFAULT_DB_ALIAS
    connection = connections[using]
    table = connection.ops.quote_name(PageViewTotal._meta.db_table)
    sql, params = f"SELECT views FROM {table} WHERE key_hash = %s", [hashed]
    if fence is None or fence.using != using:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        views = None if row is None else int(row[0])
        return views if fence is None else (views, True)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ({sql}), {fence.sql}", [*params, *fence.params])
        found, later = cursor.fetchone()
    return (None if found is None else int(found)), bool(later)


def get_view_counts_for_objects(objects: Iterable[Model]) -> dict[Any, int]:
    """``{pk: views}`` for every object given (0 for unviewed ones), in one query."""
    objects = list(objects)
    if not objects:
        return {}
    by_type: dict[ContentType, list[str]] = defaultdict(list)
    for obj in objects:
        by_type[ContentType.objects.get_for_model(obj)].append(str(obj.pk))
    hashes = {
        key_hash(OBJECT, content_type.pk, pk): (content_type.pk, pk)
        for content_type, pks in by_type.items()
        for pk in pks
    }
    dims = {obj.pk: _object_dims(obj) for obj in objects}

    def db_read() -> Counter[tuple[int, str]]:
        """The keys' all-time rows: the statement written out (the ORM's cost more). Not
        fenced (live.Fence): with 50 keys, the fence made PostgreSQL's statement ~0.15 ms
        slower, more than the round trip it spares."""
        using = router.db_for_read(PageViewTotal) or DEFAULT_DB_ALIAS
        connection = connections[using]
        table = connection.ops.quote_name(PageViewTotal._meta.db_table)
        marks = ", ".join(["%s"] * len(hashes))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key_hash, views FROM {table} WHERE key_hash IN ({marks})", [*hashes]
            )
            rows = cursor.fetchall()
        return Counter({hashes[h]: int(n) for h, n in rows})

    counts, local, remote = live.read(db_read, [d for ds in dims.values() for d in ds])
    result: dict[Any, int] = {}
    for obj in objects:
        content_type = ContentType.objects.get_for_model(obj)
        stored = counts[(content_type.pk, str(obj.pk))]
        buffered = sum(n for t, n in local.items() if is_object(t, obj))
        result[obj.pk] = stored + buffered + sum(remote[d] for d in dims[obj.pk])
    return result


aget_view_count = sync_to_async(get_view_count)
aget_view_counts_for_objects = sync_to_async(get_view_counts_for_objects)
