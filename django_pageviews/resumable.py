"""Migrations 0002 and 0004 run again after a ``migrate`` interrupted inside them.

They change 0.2.x's table: 0004's schema operations are skipped when the database
already has their result; 0002 starts by taking back what it left (``undo_interrupted``).

MySQL/MariaDB cannot roll a schema change back: a ``migrate`` killed in the middle of a
migration keeps the statements it ran, and the migration stays unrecorded. The next
``migrate`` ran them again and failed on the first (measured: SIGKILL inside 0004 on
MariaDB, then ``migrate``: "Duplicate key name ..._event_id_..._uniq"), leaving the site
to repair its schema by hand. PostgreSQL and SQLite roll the whole migration back, so
there the checks find nothing made and every operation runs as before.

Each check reads the schema (Django's introspection) and says whether the operation's
statements ran: an index by name, an altered column by what the new field makes of it
(null, unique, length, text or not). Only operations whose statements all run at once
are checked (not 0002's: see ``undo_interrupted``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps.registry import Apps
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
        # Not on a database the routers keep the app from (PAGEVIEW_DATABASE elsewhere):
        # there the table is not, and the operation itself would do nothing.
        model = to_state.apps.get_model(app_label, self.operation.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
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


def undo_interrupted(tables: list[str]) -> Callable[[Apps, BaseDatabaseSchemaEditor], None]:
    """Migration 0002's first step: what an interrupted 0002 left, taken back to 0.2.x's
    schema, so that 0002 then runs as on any 0.2.x database. 0002 cannot be resumed
    operation by operation as 0004 is: its new tables' indexes and foreign keys are made
    at the migration's end (Django's deferred SQL), so a table found made may lack them.
    Its new tables are dropped (nothing writes to them before 0002 is recorded), the raw
    table's new columns dropped, its text object id made a number again (0.2.x's values
    still are), its url index made again. Nothing to do unless 0002 was interrupted on
    MySQL/MariaDB (measured: SIGKILL inside 0002 on MariaDB, then ``migrate`` failed
    with "Table 'django_pageviews_pageviewdaily' already exists")."""

    def undo(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        connection = schema_editor.connection
        model = apps.get_model("django_pageviews", "PageView")
        table = model._meta.db_table
        with connection.cursor() as cursor:
            existing = set(connection.introspection.table_names(cursor))
            columns = {
                c.name: c for c in connection.introspection.get_table_description(cursor, table)
            }
        for name in tables:
            if name in existing:
                schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(name)}")
        for name in ("event_id", "visitor_hash"):
            if name in columns:
                column = schema_editor.quote_name(name)
                schema_editor.execute(
                    f"ALTER TABLE {schema_editor.quote_name(table)} DROP COLUMN {column}"
                )
        object_id = model._meta.get_field("object_id")
        found = connection.introspection.get_field_type(
            columns["object_id"].type_code, columns["object_id"]
        )
        if found in TEXT:
            text = models.CharField(blank=True, max_length=64, null=True)
            text.set_attributes_from_name("object_id")
            text.model = model
            schema_editor.alter_field(model, text, object_id)
        with connection.cursor() as cursor:  # again: SQLite rebuilt the table, indexes too
            constraints = connection.introspection.get_constraints(cursor, table)
        for index in model._meta.indexes:
            if index.name not in constraints:
                schema_editor.add_index(model, index)

    return undo
