"""The schema step from 0.2.x's one table to 1.0's: the new tables and columns.

From 0.2.x's one table to 1.0's schema, in three steps: this one changes the schema
(the new tables; on the raw table, the columns 1.0 adds, nullable for now, and the text
object id), 0003 brings the 0.2.x rows over, 0004 adds the constraints those rows needed
first (PostgreSQL refuses to alter a table with updates pending in the same transaction,
so data and schema changes of one table are not mixed in one migration).

Its first step takes back what an interrupted run of it left on MySQL/MariaDB, whose
schema changes are not rolled back (resumable.undo_interrupted)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from django_pageviews.resumable import undo_interrupted

NEW_TABLES = [
    "django_pageviews_pageviewdaily",
    "django_pageviews_pageviewkeydaily",
    "django_pageviews_pageviewtotal",
    "django_pageviews_processedbatch",
    "django_pageviews_skippeddaily",
    "django_pageviews_unsettledshipment",
    "django_pageviews_visitorsalt",
]


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_pageviews", "0001_initial"),
    ]

    operations = [
        # atomic=False: Django wraps a data step in a transaction on MySQL/MariaDB, where
        # schema changes inside one are refused
        migrations.RunPython(undo_interrupted(NEW_TABLES), migrations.RunPython.noop, atomic=False),
        migrations.CreateModel(
            name="PageViewDaily",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("target_hash", models.CharField(max_length=32)),
                ("object_id", models.CharField(blank=True, default="", max_length=64)),
                ("url", models.CharField(max_length=700)),
                ("view_name", models.CharField(blank=True, default="", max_length=200)),
                ("views", models.PositiveBigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "Daily page views",
                "verbose_name_plural": "Daily page views",
            },
        ),
        migrations.CreateModel(
            name="PageViewKeyDaily",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=1)),
                ("key_hash", models.CharField(max_length=32)),
                ("value", models.CharField(max_length=700)),
                ("views", models.PositiveBigIntegerField(default=0)),
                ("day", models.DateField()),
            ],
            options={
                "verbose_name": "Daily page views per key",
                "verbose_name_plural": "Daily page views per key",
            },
        ),
        migrations.CreateModel(
            name="PageViewTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=1)),
                ("key_hash", models.CharField(max_length=32)),
                ("value", models.CharField(max_length=700)),
                ("views", models.PositiveBigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "Total page views",
                "verbose_name_plural": "Total page views",
            },
        ),
        migrations.CreateModel(
            name="ProcessedBatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("batch_id", models.CharField(max_length=64, unique=True)),
                ("views", models.PositiveIntegerField()),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("redis_epoch", models.CharField(blank=True, default="", max_length=64)),
                ("redis_seq", models.PositiveBigIntegerField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "Processed batch",
                "verbose_name_plural": "Processed batches",
            },
        ),
        migrations.CreateModel(
            name="SkippedDaily",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("reason", models.CharField(max_length=20)),
                ("requests", models.PositiveBigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "Requests not counted",
                "verbose_name_plural": "Requests not counted",
            },
        ),
        migrations.CreateModel(
            name="UnsettledShipment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("shipment_id", models.CharField(max_length=64, unique=True)),
                ("payload", models.TextField()),
                ("views", models.PositiveIntegerField()),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
            ],
            options={
                "verbose_name": "Unsettled shipment",
                "verbose_name_plural": "Unsettled shipments",
            },
        ),
        migrations.CreateModel(
            name="VisitorSalt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField(unique=True)),
                ("salt", models.CharField(max_length=64)),
            ],
            options={
                "verbose_name": "Visitor salt",
                "verbose_name_plural": "Visitor salts",
            },
        ),
        migrations.AlterModelOptions(
            name="pageview",
            options={"verbose_name": "Page View", "verbose_name_plural": "Page Views"},
        ),
        migrations.RemoveIndex(
            model_name="pageview",
            name="django_page_url_3d5c2e_idx",
        ),
        # Unique once 0003 has given every 0.2.x row its own id (0004).
        migrations.AddField(
            model_name="pageview",
            name="event_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="pageview",
            name="visitor_hash",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AlterField(
            model_name="pageview",
            name="object_id",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="pageviewdaily",
            name="content_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                to="contenttypes.contenttype",
            ),
        ),
        migrations.CreateModel(
            name="PageViewsDashboard",
            fields=[],
            options={
                "verbose_name": "Page views dashboard",
                "verbose_name_plural": "Page views dashboard",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("django_pageviews.pageviewdaily",),
        ),
        migrations.AddField(
            model_name="pageviewkeydaily",
            name="content_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AddField(
            model_name="pageviewtotal",
            name="content_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AddIndex(
            model_name="processedbatch",
            index=models.Index(
                fields=["redis_epoch", "redis_seq"], name="django_page_redis_e_11ba52_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="skippeddaily",
            constraint=models.UniqueConstraint(
                fields=("day", "reason"), name="pageview_skipped_reason"
            ),
        ),
        migrations.AddIndex(
            model_name="pageviewdaily",
            index=models.Index(
                fields=["content_type", "object_id", "day"], name="django_page_content_a41d22_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="pageviewdaily",
            index=models.Index(fields=["url"], name="django_page_url_5a4226_idx"),
        ),
        migrations.AddIndex(
            model_name="pageviewdaily",
            index=models.Index(fields=["view_name"], name="django_page_view_na_244a35_idx"),
        ),
        migrations.AddIndex(
            model_name="pageviewdaily",
            index=models.Index(fields=["day"], name="django_page_day_44b7f3_idx"),
        ),
        migrations.AddConstraint(
            model_name="pageviewdaily",
            constraint=models.UniqueConstraint(
                fields=("day", "target_hash"), name="pageview_daily_target"
            ),
        ),
        migrations.AddIndex(
            model_name="pageviewkeydaily",
            index=models.Index(
                fields=["kind", "content_type", "day", "views"], name="django_page_kind_2b7f89_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="pageviewkeydaily",
            index=models.Index(fields=["kind", "day", "views"], name="django_page_kind_cfa8cd_idx"),
        ),
        migrations.AddIndex(
            model_name="pageviewkeydaily",
            index=models.Index(
                fields=["key_hash", "day", "views"], name="django_page_key_has_68a8ac_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="pageviewkeydaily",
            constraint=models.UniqueConstraint(
                fields=("day", "key_hash"), name="pageview_keydaily_key"
            ),
        ),
        migrations.AddIndex(
            model_name="pageviewtotal",
            index=models.Index(
                fields=["kind", "content_type", "views"], name="django_page_kind_ba2dc5_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="pageviewtotal",
            index=models.Index(fields=["kind", "views"], name="django_page_kind_8af6ad_idx"),
        ),
        migrations.AddConstraint(
            model_name="pageviewtotal",
            constraint=models.UniqueConstraint(fields=("key_hash",), name="pageview_total_key"),
        ),
    ]
