"""The raw table keeps the indexes its readers use (docs/decisions.md).

Dropped: ``view_name`` and ``(content_type, timestamp)``, which only the 0.2.x reports
read (they read the daily and key tables now), and the plain ``url`` index. The URL
prefix index of 0002 (``pageview_url_prefix``, PostgreSQL only, ``varchar_pattern_ops``)
becomes a model index: on PostgreSQL it is there already and serves ``url = x`` as well
as ``url LIKE 'x%'``, so the plain one only cost every COPY row an insertion; on the
other databases, where the plain index served the prefix search, an index of that name
replaces it.
"""

from django.db import migrations, models

PREFIX = models.Index(fields=["url"], name="pageview_url_prefix", opclasses=["varchar_pattern_ops"])


def create_elsewhere(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":  # there: made by 0002 already
        schema_editor.add_index(apps.get_model("django_pageviews", "PageView"), PREFIX)


def drop_elsewhere(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":  # there: dropped by 0002's reverse
        schema_editor.remove_index(apps.get_model("django_pageviews", "PageView"), PREFIX)


class Migration(migrations.Migration):
    dependencies = [("django_pageviews", "0007_key_daily_covering")]

    operations = [
        migrations.RemoveIndex(model_name="pageview", name="django_page_view_na_34eb69_idx"),
        migrations.RemoveIndex(model_name="pageview", name="django_page_content_186b7d_idx"),
        migrations.RemoveIndex(model_name="pageview", name="django_page_url_1589ff_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="pageview", index=PREFIX)],
            database_operations=[migrations.RunPython(create_elsewhere, drop_elsewhere)],
        ),
    ]
