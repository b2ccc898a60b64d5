"""Migration 0006 fills the key rows from the daily rows stored before it, with its own
(historical) models: run from 0005 on a database holding daily rows, as Django's docs
suggest for testing data migrations (MigrationExecutor in a TransactionTestCase)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase

from django_pageviews.totals import OBJECT, URL, VIEW, key_hash
from tests.models import Article

APP = "django_pageviews"
BEFORE = [(APP, "0005_processed_batch_redis_mark")]
AFTER = [(APP, "0006_key_totals")]

Key = tuple[str, int | None, str]


class KeyTotalsMigrationTests(TransactionTestCase):
    def setUp(self) -> None:
        self.executor = MigrationExecutor(connection)
        self.latest = self.executor.loader.graph.leaf_nodes(APP)

    def tearDown(self) -> None:
        executor = MigrationExecutor(connection)  # a fresh graph: the state has moved
        executor.migrate(self.latest)

    def migrate(self, targets: list[tuple[str, str]]) -> object:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    def test_0006_sums_the_stored_daily_rows(self) -> None:
        old = self.migrate(BEFORE)
        daily = old.get_model(APP, "PageViewDaily")  # type: ignore[attr-defined]
        ct = ContentType.objects.get_for_model(Article).pk
        first = date(2026, 1, 1)
        rows = []
        for d in range(12):
            day = first + timedelta(days=d)
            for i in range(1, 8):
                views = (d * 7 + i * 3) % 5  # some zeros, many equal counts
                rows.append(
                    daily(
                        day=day,
                        target_hash=f"{d:04d}{i:028d}",
                        content_type_id=ct if i % 3 else None,
                        object_id=str(i % 4) if i % 3 else "",
                        url=f"/p/{i % 5}/",
                        view_name=f"v{i % 2}" if i % 4 else "",
                        views=views,
                    )
                )
        daily.objects.bulk_create(rows)
        expected_days: Counter[tuple[date, Key]] = Counter()
        for row in rows:
            keys: list[Key] = [(URL, None, row.url)]
            if row.view_name:
                keys.append((VIEW, None, row.view_name))
            if row.content_type_id is not None:
                keys.append((OBJECT, row.content_type_id, row.object_id))
            for key in keys:
                expected_days[(row.day, key)] += row.views
        expected_days = +expected_days
        expected_totals: Counter[Key] = Counter()
        for (_, key), n in expected_days.items():
            expected_totals[key] += n

        new = self.migrate(AFTER)
        key_daily = new.get_model(APP, "PageViewKeyDaily")  # type: ignore[attr-defined]
        total = new.get_model(APP, "PageViewTotal")  # type: ignore[attr-defined]
        got_days: Counter[tuple[date, Key]] = Counter()
        for day, kind, ct_id, value, hashed, n in key_daily.objects.values_list(
            "day", "kind", "content_type_id", "value", "key_hash", "views"
        ):
            self.assertEqual(hashed, key_hash(kind, ct_id, value))
            got_days[(day, (kind, ct_id, value))] += n
        self.assertEqual(got_days, expected_days)
        got_totals = Counter(
            {
                (kind, ct_id, value): n
                for kind, ct_id, value, n in total.objects.values_list(
                    "kind", "content_type_id", "value", "views"
                )
            }
        )
        self.assertEqual(got_totals, expected_totals)
