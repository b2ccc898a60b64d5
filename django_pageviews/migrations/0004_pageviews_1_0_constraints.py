"""The constraints and index of 1.0's raw table, added once the 0.2.x rows are over.

What the raw table's rows needed first (0003): a unique event id on every row, the url
column of 1.0 (700 characters: every database can index it whole) and its prefix index.

Each schema operation is ``Resumable``: on MySQL/MariaDB, where a killed ``migrate`` keeps
the statements it ran, the next one skips what is made instead of failing on it.

The prefix index serves the admin's URL search (``LIKE 'x%'``) and reads by URL. On
PostgreSQL it uses the ``varchar_pattern_ops`` operator class, without which a non-C
collation serves no ``LIKE`` from an index; the daily table gets one there too. Elsewhere
the opclass is ignored and the index is a plain one, which serves both already.
"""

import uuid

from django.db import migrations, models

from django_pageviews.resumable import Resumable

DAILY_PREFIX = "daily_url_prefix"
DAILY_TABLE = "django_pageviews_pageviewdaily"


def create_daily_prefix(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{DAILY_PREFIX}" ON "{DAILY_TABLE}" '
            '("url" varchar_pattern_ops)'
        )


def drop_daily_prefix(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{DAILY_PREFIX}"')


class Migration(migrations.Migration):
    dependencies = [("django_pageviews", "0003_upgrade_rows")]

    operations = [
        Resumable(
            migrations.AlterField(
                model_name="pageview",
                name="event_id",
                field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
            )
        ),
        Resumable(
            migrations.AlterField(
                model_name="pageview",
                name="url",
                field=models.CharField(max_length=700),
            )
        ),
        Resumable(
            migrations.AddIndex(
                model_name="pageview",
                index=models.Index(
                    fields=["url"], name="pageview_url_prefix", opclasses=["varchar_pattern_ops"]
                ),
            )
        ),
        migrations.RunPython(create_daily_prefix, drop_daily_prefix),
    ]
