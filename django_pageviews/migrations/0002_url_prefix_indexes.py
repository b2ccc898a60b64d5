"""URL prefix indexes for PostgreSQL.

Under a non-C collation PostgreSQL cannot serve ``LIKE 'prefix%'`` (the admin's URL
search) from a plain index; a ``varchar_pattern_ops`` index can. Other databases already
use their url index for that, so they get nothing (a model Index with opclasses would
create a duplicate plain index there).
"""

from django.db import migrations

TABLES = {
    "pageview_url_prefix": "django_pageviews_pageview",
    "daily_url_prefix": "django_pageviews_pageviewdaily",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, table in TABLES.items():
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("url" varchar_pattern_ops)'
            )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in TABLES:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("django_pageviews", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
