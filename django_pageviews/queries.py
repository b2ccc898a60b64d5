"""The read API: totals from the daily table plus views still waiting to be written."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, Sum

from .buffer import buffer
from .events import PK, Target
from .models import PageViewDaily


def _label(obj: Model) -> str:
    return obj._meta.concrete_model._meta.label_lower  # type: ignore[union-attr]


def _is_object(target: Target, label: str, obj: Model) -> bool:
    if target.model != label:
        return False
    if target.field == PK:
        return target.value == str(obj.pk)
    return target.value == str(getattr(obj, target.field, None))


def get_view_count(
    obj: Model | None = None, url: str | None = None, view_name: str | None = None
) -> int:
    """Views of everything that matches all the given criteria (all views if none)."""
    query = Q()
    if obj is not None:
        content_type = ContentType.objects.get_for_model(obj)
        query &= Q(content_type=content_type, object_id=str(obj.pk))
    if url is not None:
        query &= Q(url=url)
    if view_name is not None:
        query &= Q(view_name=view_name)
    label = _label(obj) if obj is not None else ""

    def matches(t: Target) -> bool:
        return (
            (obj is None or _is_object(t, label, obj))
            and (url is None or t.url == url)
            and (view_name is None or t.view_name == view_name)
        )

    with buffer.consistent_read() as pending:
        stored = PageViewDaily.objects.filter(query).aggregate(total=Sum("views"))["total"]
    return (stored or 0) + sum(n for t, n in pending.items() if matches(t))


def get_view_counts_for_objects(objects: Iterable[Model]) -> dict[Any, int]:
    """``{pk: views}`` for every object given (0 for unviewed ones), in one query."""
    objects = list(objects)
    by_type: dict[ContentType, list[str]] = defaultdict(list)
    for obj in objects:
        by_type[ContentType.objects.get_for_model(obj)].append(str(obj.pk))
    counts: Counter[tuple[int, str]] = Counter()
    with buffer.consistent_read() as pending:
        if by_type:
            query = Q()
            for content_type, pks in by_type.items():
                query |= Q(content_type=content_type, object_id__in=pks)
            rows = (
                PageViewDaily.objects.filter(query)
                .values_list("content_type_id", "object_id")
                .annotate(total=Sum("views"))
                .order_by()
            )
            for content_type_id, object_id, total in rows:
                counts[(content_type_id, object_id)] = total
    result: dict[Any, int] = {}
    for obj in objects:
        content_type = ContentType.objects.get_for_model(obj)
        label = _label(obj)
        live = sum(n for t, n in pending.items() if _is_object(t, label, obj))
        result[obj.pk] = counts[(content_type.pk, str(obj.pk))] + live
    return result
