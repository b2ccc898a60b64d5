"""The rows of a 0.2.x database, brought over to 1.0 (upgrade.py); none on a new one."""

from django.db import migrations

from django_pageviews.upgrade import upgrade_rows


class Migration(migrations.Migration):
    dependencies = [("django_pageviews", "0002_pageviews_1_0")]

    operations = [migrations.RunPython(upgrade_rows, migrations.RunPython.noop, elidable=True)]
