"""Schema operations that a second ``migrate`` skips when the database already has their
result (migration 0004, which changes 0.2.x's table once its rows are brought over).

MySQL/MariaDB cannot roll a schema change back: a ``migrate`` killed in the middle of a
migration keeps the statements it ran, and the migration stays unrecorded. The next
``migrate`` ran them again and failed on the first (measured: SIGKILL inside 0004 on
MariaDB, then ``migrate``: "Duplicate key name ..._event_id_..._uniq"), leaving the site
to repair its schema by hand. PostgreSQL and SQLite roll the whole migration back, so
there the checks find nothing made and every operation runs as before.

Each check reads the schema (Django's introspection) and says whether the operation's
statements ran: an index by name, an altered column by what the new field makes of it
(null, unique, length, text or not). Only operations whose statements all run at once
are checked: 0002's new tables and foreign keys leave statements for the migration's
end (Django's deferred SQL), so a table found made may still lack its indexes; 0002
is not resumable this way (docs/howto/upgrading.md says what to do).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations import AddIndex, AlterField
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

CHECKED = (AddIndex, AlterField)
TEXT = {"CharField", "TextField"}


class Resumable(Operation):
    """``operation``, unless the schema shows it made already."""

    def __init__(self, operation: AddIndex | AlterField) -> None:
        if not isinstance(operation, CHECKED):
            raise TypeError(f"no check for {type(operation).__name__}")
        self.operation = operation  # both kinds reversible and reducible to SQL (the defaults)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.operation], {})

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        self.operation.state_forwards(app_label, state)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if not made(self.operation, app_label, schema_editor, to_state):
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, *args: Any, **kwargs: Any) -> None:
        self.operation.database_backwards(*args, **kwargs)  # undone as usual

    def describe(self) -> str:
        return self.operation.describe()

    @property
    def migration_name_fragment(self) -> str:
        return self.operation.migration_name_fragment

    def references_model(self, name: str, app_label: str) -> bool:
        return self.operation.references_model(name, app_label)

    def references_field(self, model_name: str, name: str, app_label: str) -> bool:
        return self.operation.references_field(model_name, name, app_label)


def made(
    operation: AddIndex | AlterField,
    app_label: str,
    schema_editor: BaseDatabaseSchemaEditor,
    to: ProjectState,
) -> bool:
    """Whether the schema already has what ``operation`` makes."""
    connection = schema_editor.connection
    model = to.apps.get_model(app_label, operation.model_name)
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
        columns = {c.name: c for c in connection.introspection.get_table_description(cursor, table)}
    if isinstance(operation, AddIndex):
        return operation.index.name in constraints
    field = model._meta.get_field(operation.name)
    assert isinstance(field, models.Field)
    column = columns.get(field.column)
    if column is None:
        return False
    unique = any(
        c["unique"] and not c["primary_key"] and c["columns"] == [field.column]
        for c in constraints.values()
    )
    kind = field.get_internal_type()
    as_text = kind in TEXT or (
        kind == "UUIDField" and not connection.features.has_native_uuid_field
    )
    found = connection.introspection.get_field_type(column.type_code, column)
    return (
        bool(column.null_ok) == field.null
        and unique == field.unique
        and (found in TEXT) == as_text
        # display_size: the declared length on every backend (as inspectdb reads it)
        and (kind != "CharField" or column.display_size == field.max_length)
    )
