"""How a viewed object is named in an event, looked up by the writer and found by reads."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.core.signals import setting_changed
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Field, Model
from django.dispatch import receiver
from django.urls import URLPattern, URLResolver, get_resolver

from .events import NUL, PK, Target


def model_label(model: type[Model]) -> str:
    """Views of a proxy or child model count for the concrete model, as ContentType does."""
    concrete = model._meta.concrete_model
    assert concrete is not None
    return concrete._meta.label_lower


def view_model(view_class: Any) -> type[Model] | None:
    """The model a class-based view shows (``model`` or ``queryset.model``), if any."""
    model = getattr(view_class, "model", None)
    if model is None:
        model = getattr(getattr(view_class, "queryset", None), "model", None)
    if isinstance(model, type) and issubclass(model, Model):
        return model
    return None


def lookup_field(model: type[Model], name: str) -> Field[Any, Any] | None:
    """The field an event names an object of ``model`` by (PK: the primary key), or None
    when no row can be found by it: not a field of the model (a slug_field renamed in a
    deploy, or a URL argument the model never had), not a column (a generic or reverse
    relation), or a many-to-many relation."""
    try:
        field = model._meta.pk if name == PK else model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if not isinstance(field, Field) or not field.concrete or field.many_to_many:
        return None
    return field


def lookup_value(field: Field[Any, Any], value: str) -> Any:
    """``value`` as ``field`` holds it. ValueError for a value no row can have (not a
    number for an integer field, out of its range, not a UUID, text with a NUL, which
    PostgreSQL refuses and events never hold, ...): such an object is counted by URL and
    view name, never sent to the database, which would refuse the query and with it the
    whole batch (or a stats request with a 500)."""
    try:
        column = field
        while column.is_relation:  # a foreign key: the value is the related row's key
            column = column.target_field  # type: ignore[attr-defined]
        python = column.to_python(value)
        if python is None:
            raise ValueError("no value")
        if isinstance(python, str) and NUL in python:
            raise ValueError(f"{value!r} holds a NUL")
        for validator in column.validators:  # the range of an integer column
            if isinstance(validator, MinValueValidator | MaxValueValidator):
                validator(python)
        hash(python)
    except (ValidationError, FieldError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"{value!r} is not a value of {field}") from exc
    return python


def is_object(target: Target, obj: Model) -> bool:
    if target.model != model_label(type(obj)):
        return False
    if target.field == PK:
        return target.value == str(obj.pk)
    return target.value == str(getattr(obj, target.field, None))


def lookup_values(obj: Model) -> list[tuple[str, str]]:
    """Every (field, value) an event may name ``obj`` by: its pk, and the slug fields that
    the project's class-based views look it up by."""
    columns = _slug_columns(type(obj))
    return _named(obj.pk, columns, [getattr(obj, attname) for _, attname in columns])


def lookup_values_of(model: type[Model], pks: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """``lookup_values`` of the objects of ``model`` with these pks, in one query of just
    those columns (a ranking asks it of every key it may show), or none when no view looks
    the model up by a slug: each pk then names its object alone."""
    pks = list(pks)
    columns = _slug_columns(model) if pks else []  # none asked (a read without Redis): no query
    if not columns:
        return {pk: [(PK, pk)] for pk in pks}
    rows = model._default_manager.filter(pk__in=pks)  # where the site keeps them
    return {
        str(pk): _named(pk, columns, slugs)
        for pk, *slugs in rows.values_list("pk", *(attname for _, attname in columns))
    }


def _slug_columns(model: type[Model]) -> list[tuple[str, str]]:
    """(slug field, attribute) of each slug field a row can be found by (lookup_field):
    a foreign key names the related row's key, as the view's filter does."""
    columns = []
    for name in sorted(_slug_fields().get(model_label(model), ())):
        field = lookup_field(model, name)
        if field is not None:
            columns.append((name, field.attname))
    return columns


def _named(pk: Any, columns: list[tuple[str, str]], slugs: list[Any]) -> list[tuple[str, str]]:
    values = [(PK, str(pk))]
    values += [(f, str(v)) for (f, _), v in zip(columns, slugs, strict=True) if v is not None]
    return values


@cache
def _slug_fields() -> dict[str, frozenset[str]]:
    """{model label: slug fields} over the URLconf's class-based views: the same for every
    process of a site, so a reader knows how any producer may have named an object."""
    found: dict[str, set[str]] = {}
    stack: list[Any] = list(get_resolver().url_patterns)
    while stack:
        entry = stack.pop()
        if isinstance(entry, URLResolver):
            stack.extend(entry.url_patterns)
        elif isinstance(entry, URLPattern):
            view_class = getattr(entry.callback, "view_class", None)
            model = view_model(view_class)
            if model is not None:
                field = getattr(view_class, "slug_field", "slug")
                found.setdefault(model_label(model), set()).add(field)
    return {label: frozenset(fields) for label, fields in found.items()}


@receiver(setting_changed)
def _clear(*, setting: str, **kwargs: object) -> None:
    if setting == "ROOT_URLCONF":
        _slug_fields.cache_clear()
