"""A database made by django-pageviews 0.2.x upgrades with ``migrate`` and keeps every
count (issue #13): the test builds 0.2.x's own table (migration 0001, its exact schema and
``django_migrations`` row), fills it as 0.2.x did (one row per view, raw addresses,
session keys) over several days and objects, counts as 0.2.x counted (``COUNT(*)`` over
the rows), migrates to the latest migration and compares every documented read.

Run on every database of the suite (SQLite, PostgreSQL, MariaDB), as Django's docs
suggest for data migrations (MigrationExecutor in a TransactionTestCase)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from django_pageviews.events import URL_MAX_LENGTH, stored_url
from django_pageviews.models import PageView
from django_pageviews.privacy import anonymize_ip
from tests.models import Article

APP = "django_pageviews"
ZONE = "America/New_York"  # a view at 02:00 UTC counts for the day before, there
LONG_URL = "/long/" + "x" * 900  # 0.2.x's column took 2,000 characters; 1.0's takes 700

# 0.2.x's table as its migration made it (shared/DESIGN.md, "0.2.x database schema").
COLUMNS_0_2 = {
    "id",
    "content_type_id",
    "object_id",
    "url",
    "view_name",
    "ip_address",
    "user_agent",
    "session_key",
    "timestamp",
}
INDEXES_0_2 = {
    "django_page_content_4f111b_idx": ["content_type_id", "object_id"],
    "django_page_url_3d5c2e_idx": ["url"],
    "django_page_timesta_a2ab55_idx": ["timestamp"],
}


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@override_settings(TIME_ZONE=ZONE)
class UpgradeFrom02Tests(TransactionTestCase):
    def setUp(self) -> None:
        self.latest = MigrationExecutor(connection).loader.graph.leaf_nodes(APP)
        self.old = migrate([(APP, "0001_initial")])
        self.articles = [Article.objects.create(title=f"A{i}", slug=f"a-{i}") for i in range(4)]
        self.rows = self._fill()

    def tearDown(self) -> None:
        migrate(self.latest)

    def _fill(self) -> list[Any]:
        """Views as 0.2.x stored them: 5 days, 4 articles, plain pages, a long URL, raw
        IPv4 and IPv6 addresses, session keys (some visitors twice), rows without."""
        rng = random.Random(7)
        model = self.old.get_model(APP, "PageView")
        article_type = ContentType.objects.get_for_model(Article)
        today = timezone.localdate(timezone=ZoneInfo(ZONE))
        rows = []
        for i in range(600):
            day = today - timedelta(days=i % 5)
            hour = rng.choice([1, 2, 3, 12, 23])  # UTC hours: some fall on the day before
            moment = datetime(day.year, day.month, day.day, hour, i % 60, tzinfo=ZoneInfo("UTC"))
            kind = i % 6
            if kind < 4:
                article = self.articles[(i * 7) % 4 if i % 3 else 0]
                target: dict[str, Any] = {
                    "content_type_id": article_type.pk,
                    "object_id": article.pk,
                    "url": f"/articles/{article.slug}/",
                    "view_name": "article-detail",
                }
            elif kind == 4:
                target = {"url": f"/page/{i % 3}/", "view_name": None}
            else:
                target = {"url": LONG_URL if i % 4 else "/about/", "view_name": "about"}
            address = f"203.0.{i % 7}.{i % 250}" if i % 5 else f"2001:db8:{i % 3:x}:1::{i % 9}"
            session = f"s{rng.randrange(40):039d}" if i % 4 else rng.choice([None, ""])
            rows.append(
                model(
                    timestamp=moment,
                    ip_address=address,
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                    session_key=session,
                    **target,
                )
            )
        model.objects.bulk_create(rows)
        return list(model.objects.order_by("id"))  # as stored (addresses normalised)

    def _local_day(self, moment: datetime) -> date:
        return timezone.localtime(moment, ZoneInfo(ZONE)).date()

    def test_the_0_2_schema_is_what_0_2_made(self) -> None:
        with connection.cursor() as cursor:
            table = "django_pageviews_pageview"
            columns = {
                c.name for c in connection.introspection.get_table_description(cursor, table)
            }
            constraints = connection.introspection.get_constraints(cursor, table)
        self.assertEqual(columns, COLUMNS_0_2)
        indexes = {
            name: c["columns"]
            for name, c in constraints.items()
            if c["index"] and not c["primary_key"]
        }
        for name, fields in INDEXES_0_2.items():
            self.assertEqual(indexes.get(name), fields)
        applied = MigrationRecorder(connection).applied_migrations()
        self.assertEqual({n for a, n in applied if a == APP}, {"0001_initial"})

    def test_every_count_is_kept(self) -> None:
        rows = self.rows
        article_type = ContentType.objects.get_for_model(Article)
        per_article = Counter(r.object_id for r in rows if r.content_type_id == article_type.pk)
        per_url = Counter(r.url for r in rows)
        per_name = Counter(r.view_name for r in rows if r.view_name)
        per_day = {
            a.pk: Counter(self._local_day(r.timestamp) for r in rows if r.object_id == a.pk)
            for a in self.articles
        }
        sessions = {
            a.pk: len({r.session_key for r in rows if r.object_id == a.pk and r.session_key})
            for a in self.articles
        }
        migrate(self.latest)

        self.assertEqual(PageView.objects.count(), len(rows))
        self.assertEqual(PageView.get_view_count(), len(rows))
        for article in self.articles:
            self.assertEqual(PageView.get_view_count(obj=article), per_article[article.pk])
            self.assertEqual(article.view_count, per_article[article.pk])
            self.assertEqual(article.unique_view_count, sessions[article.pk])
            daily = PageView.get_daily_views(article, days=7)
            self.assertEqual({d: n for d, n in daily.items() if n}, dict(per_day[article.pk]))
            self.assertEqual(PageView.get_views_by_period(article, days=7), per_article[article.pk])
        for url, n in per_url.items():
            self.assertEqual(PageView.get_view_count(url=url), n)
        for name, n in per_name.items():
            self.assertEqual(PageView.get_view_count(view_name=name), n)
        counts = PageView.get_view_counts_for_objects(self.articles)
        self.assertEqual(counts, {a.pk: per_article[a.pk] for a in self.articles})

        expected_urls = sorted(
            ((stored_url(u), n) for u, n in per_url.items()), key=lambda kv: (-kv[1], kv[0])
        )
        self.assertEqual(PageView.get_popular_urls(limit=20), expected_urls)
        self.assertEqual(PageView.get_popular_urls(limit=20, days=30), expected_urls)
        names = sorted(per_name.items(), key=lambda kv: (-kv[1], kv[0]))
        self.assertEqual(PageView.get_popular_view_names(limit=5), names)
        popular = [(a.pk, n) for a, n in PageView.get_popular_objects(Article, limit=4)]
        # Equal counts rank by key, and an object's key is its pk as text: 100 before 99.
        by_rank = sorted(per_article.items(), key=lambda kv: (-kv[1], str(kv[0])))
        self.assertEqual(popular, by_rank)

    def test_the_rows_keep_nothing_1_0_would_not_store(self) -> None:
        addresses = {r.id: r.ip_address for r in self.rows}
        long_views = sum(r.url == LONG_URL for r in self.rows)
        migrate(self.latest)
        stored = PageView.objects.order_by("id")
        self.assertFalse(stored.filter(session_key__isnull=False).exists())
        self.assertEqual(len({r.event_id for r in stored}), len(self.rows))
        for row in stored:
            self.assertEqual(row.ip_address, anonymize_ip(addresses[row.id]))
        self.assertEqual(stored.filter(url=stored_url(LONG_URL)).count(), long_views)
        self.assertEqual(len(stored_url(LONG_URL)), URL_MAX_LENGTH)
        # A hash per session key: as many as there were keys, none of them a key.
        keys = {r.session_key for r in self.rows if r.session_key}
        hashes = set(stored.exclude(visitor_hash="").values_list("visitor_hash", flat=True))
        self.assertEqual(len(hashes), len(keys))
        self.assertFalse(hashes & keys)
        self.assertTrue(all(len(h) == 32 and int(h, 16) >= 0 for h in hashes))

    @override_settings(PAGEVIEW_ANONYMIZE_IP="omit")
    def test_addresses_are_removed_when_the_site_says_omit(self) -> None:
        migrate(self.latest)
        self.assertFalse(PageView.objects.filter(ip_address__isnull=False).exists())

    @override_settings(PAGEVIEW_STORE_IP=True)
    def test_addresses_are_kept_whole_when_the_site_opted_in(self) -> None:
        addresses = {r.id: r.ip_address for r in self.rows}
        migrate(self.latest)
        for pk, address in PageView.objects.values_list("id", "ip_address"):
            self.assertEqual(address, addresses[pk])
