"""Find the object each target names, one query per model and field for a whole batch.

Whatever a target names, finding it never fails the batch: an object that cannot be
found (deleted, a model no longer installed, a field the model does not have, a value the
field cannot hold, a lookup the database refuses) is counted by URL and view name only.
Only an outage raises, to be waited out with the batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import (
    DatabaseError,
    NotSupportedError,
    ProgrammingError,
    connections,
    router,
    transaction,
)

from . import stats
from .db_errors import is_data_error
from .events import PK, Target
from .log_limit import FOREVER, LogLimit
from .objects import lookup_field, lookup_value

logger = logging.getLogger(__name__)

UNRESOLVED = "unresolved_object"  # process counter: views counted by URL, object unknown

# The resolved object of a target: (content type id, object id), or (None, "").
Resolved = tuple[int | None, str]
T = TypeVar("T")

_unresolvable_log = LogLimit(FOREVER)  # per (model, field) pair


def resolve_targets(targets: set[Target]) -> dict[Target, Resolved]:
    """Content type and primary key of each target, with one query per model and field.

    An object that cannot be found (deleted, a model no longer installed, a field the
    model does not have, a value the field cannot hold) is counted for its URL and view
    name only. Only an outage raises. Objects and content types are looked up where the
    site's routers keep them, which need not be the page views' database (routers.py).
    """
    lookups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for t in targets:
        if t.model:
            lookups[(t.model, t.field)].add(t.value)
    found: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
    for (label, field), values in lookups.items():
        objects = _find(label, field, values)
        if objects is not None:
            found[(label, field)] = objects
    resolved: dict[Target, Resolved] = {}
    for t in targets:
        content_type_id, pks = found.get((t.model, t.field), (0, {}))
        object_id = pks.get(t.value)
        resolved[t] = (content_type_id, object_id) if object_id is not None else (None, "")
    return resolved


def _find(label: str, name: str, values: set[str]) -> tuple[int, dict[str, str]] | None:
    """(content type id, {value: primary key}) of the objects of model ``label`` whose
    field ``name`` has one of ``values``; None when none can be looked up."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    field = lookup_field(model, name)
    if field is None:
        _unresolvable(label, name, "not a field of the model that a row can be found by")
        return None
    wanted: dict[str, Any] = {}
    for value in values:
        try:
            wanted[value] = lookup_value(field, value)
        except ValueError:
            _unresolvable(label, name, "a value the field cannot hold")
    if not wanted:
        return None
    content_type_id = ContentType.objects.get_for_model(model).pk
    if name == PK:
        return content_type_id, {v: str(pk) for v, pk in wanted.items()}
    using = router.db_for_read(model)
    manager = model._default_manager.using(using)
    query = manager.filter(**{f"{field.name}__in": set(wanted.values())})
    rows = _refusable(lambda: list(query.values_list(field.name, "pk")), using)
    if rows is None:
        _unresolvable(label, name, "the database refused the lookup")
        return None
    pks = {value: str(pk) for value, pk in rows}
    return content_type_id, {v: pks[p] for v, p in wanted.items() if p in pks}


def _refusable(run: Callable[[], T], using: str) -> T | None:
    """``run()``, or None if the database refuses the query itself (not an outage). Inside
    a caller's transaction, a savepoint keeps a refused query from breaking it."""
    try:
        if connections[using].in_atomic_block:
            with transaction.atomic(using=using):
                return run()
        return run()
    except DatabaseError as exc:
        if isinstance(exc, ProgrammingError | NotSupportedError) or is_data_error(exc):
            return None
        raise


def _unresolvable(label: str, name: str, why: str) -> None:
    stats.incr(UNRESOLVED)
    if _unresolvable_log.due((label, name)):
        logger.warning(
            "Page views of %s looked up by %r are counted by URL and view name only: %s "
            "(logged once per process).",
            label,
            name,
            why,
        )
