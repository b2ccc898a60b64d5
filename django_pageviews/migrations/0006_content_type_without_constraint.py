"""The foreign keys to ``ContentType`` lose their database constraint (issue #14 part 3).

With ``PAGEVIEW_DATABASE`` the app's tables live on another database than the content
types, and no database enforces a key across two. Django's cascade looks on the content
type's database too: the views of a deleted content type are deleted by a receiver
instead (content_types.py), on theirs. On PostgreSQL and MySQL/MariaDB this drops a constraint (no table
rewrite); SQLite rebuilds the four tables, as it does for any change of a column.
"""

import django.db.models.deletion
from django.db import migrations, models


def _content_type() -> models.ForeignKey:
    return models.ForeignKey(
        blank=True,
        db_constraint=False,
        null=True,
        on_delete=django.db.models.deletion.DO_NOTHING,
        to="contenttypes.contenttype",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_pageviews", "0005_daily_visitors"),
    ]

    operations = [
        migrations.AlterField(model_name=name, name="content_type", field=_content_type())
        for name in ("pageview", "pageviewdaily", "pageviewkeydaily", "pageviewtotal")
    ]
