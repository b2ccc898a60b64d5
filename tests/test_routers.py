"""PAGEVIEW_DATABASE and PageViewRouter: every table of the app on another database.

Two real databases (tests/settings.py: ``default`` and ``pageviews``, two SQLite files or
two databases of the server DATABASE_URL names). Views recorded through both pipelines
land in ``pageviews`` and nowhere else; reads, the drain's batch ids, the commands, the
admin and the API use that alias; content types and the site's objects stay in
``default``. The migrations run on a fresh pair of databases in a subprocess.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import Model, Sum
from django.test import Client, override_settings
from django.utils import timezone

from django_pageviews import salts
from django_pageviews.checks import check_database_router, check_settings
from django_pageviews.events import PK, Target, current_day
from django_pageviews.ledger import database as ledger_database
from django_pageviews.models import (
    PageView,
    PageViewDaily,
    PageViewTotal,
    ProcessedBatch,
    VisitorSalt,
)
from django_pageviews.recorder import flush
from django_pageviews.routers import ROUTER_PATH, PageViewRouter, content_types_alongside
from django_pageviews.storage import database as storage_database
from django_pageviews.storage import write_batch
from tests.conftest import asgi_requests, distinct_visitors
from tests.models import Article
from tests.processes import ROOT
from tests.settings import PAGEVIEWS_ALIAS
from tests.test_live_reads import check_every_read, ship_backlog

OTHER = PAGEVIEWS_ALIAS
BOTH = ["default", OTHER]
on_both = pytest.mark.django_db(transaction=True, databases=BOTH)


def routed(**settings: Any) -> override_settings:
    """The router listed, as a site lists it, and PAGEVIEW_DATABASE the other database."""
    return override_settings(
        **{"DATABASE_ROUTERS": [ROUTER_PATH], "PAGEVIEW_DATABASE": OTHER, **settings}
    )


def app_models() -> list[type[Model]]:
    return list(apps.get_app_config("django_pageviews").get_models())


def rows_in(alias: str) -> dict[str, int]:
    """Rows of each table of the app in ``alias``, the empty ones left out."""
    found = {m._meta.label: m._base_manager.using(alias).count() for m in app_models()}
    return {label: n for label, n in found.items() if n}


@pytest.fixture
def elsewhere() -> Iterator[None]:
    """PAGEVIEW_DATABASE names the second database, whose own content types are gone:
    a content type looked up (or created) there by mistake would show."""
    ContentType.objects.using(OTHER).all().delete()
    ContentType.objects.clear_cache()
    with routed():
        # A salt that a thread of an earlier test asked for before the app was routed
        # here lands in default: wait for it, and start from none there.
        salts._current().loader.submit(salts.forget_memory).result()
        VisitorSalt.objects.using(DEFAULT_DB_ALIAS).all().delete()
        yield
    ContentType.objects.clear_cache()


# -- the router ----------------------------------------------------------------------------


def test_the_router_is_passive_without_the_setting() -> None:
    pageviews = PageViewRouter()
    assert pageviews.db_for_write(PageView) is None
    assert pageviews.db_for_read(PageViewDaily) is None
    assert pageviews.allow_migrate("default", "django_pageviews") is None
    assert pageviews.allow_relation(PageView(), ContentType()) is None
    assert router.db_for_write(PageView) == "default"


@routed()
def test_the_router_sends_every_table_of_the_app_and_nothing_else() -> None:
    for model in app_models():
        assert router.db_for_read(model) == OTHER
        assert router.db_for_write(model) == OTHER
        assert router.allow_migrate_model(OTHER, model)
        assert not router.allow_migrate_model("default", model)
    assert storage_database() == ledger_database() == OTHER
    assert router.db_for_read(ContentType) == "default"
    assert router.db_for_read(Article) == "default"
    # A row's content type is read where content types are, not from the row's database.
    view = PageView(url="/")
    view._state.db = OTHER
    assert router.db_for_read(ContentType, instance=view) == "default"
    assert router.allow_relation(view, ContentType())
    assert router.allow_migrate(OTHER, "contenttypes", model_name="contenttype") is True
    assert not content_types_alongside(PageView)


# -- checks --------------------------------------------------------------------------------


@routed(PAGEVIEW_DATABASE="nowhere")
def test_an_alias_not_in_databases_is_one_error() -> None:
    assert [e.id for e in check_settings()] == ["django_pageviews.E048"]
    assert check_database_router() == []  # said once, by E048


@override_settings(PAGEVIEW_DATABASE=OTHER, DATABASE_ROUTERS=[])
def test_the_setting_without_the_router_is_an_error() -> None:
    (error,) = check_database_router()
    assert error.id == "django_pageviews.E049"
    assert ROUTER_PATH in (error.hint or "")
    assert "django_pageviews.PageView" in error.msg


class EverythingToDefault:
    """A site's router that answers for every model, listed above ours."""

    def db_for_read(self, model: type[Model], **hints: object) -> str:
        return "default"

    db_for_write = db_for_read


@override_settings(
    PAGEVIEW_DATABASE=OTHER,
    DATABASE_ROUTERS=[f"{__name__}.EverythingToDefault", ROUTER_PATH],
)
def test_a_router_above_ours_that_routes_elsewhere_is_an_error() -> None:
    assert [e.id for e in check_database_router()] == ["django_pageviews.E049"]


class ContentTypesAtHome:
    """A site's router that keeps contenttypes on ``default``."""

    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool | None:
        return db == "default" if app_label == "contenttypes" else None


@override_settings(
    PAGEVIEW_DATABASE=OTHER,
    DATABASE_ROUTERS=[ROUTER_PATH, f"{__name__}.ContentTypesAtHome"],
)
def test_contenttypes_kept_from_the_other_database_is_an_error() -> None:
    (error,) = check_database_router()
    assert error.id == "django_pageviews.E050"
    assert "0001" in error.msg


@routed()
def test_the_router_installed_passes_and_the_check_is_registered() -> None:
    assert check_database_router() == []
    with override_settings(DATABASE_ROUTERS=[]):
        out = StringIO()
        with pytest.raises(SystemCheckError, match="E049"):
            call_command("check", stdout=out, stderr=out)


# -- views land in the other database ------------------------------------------------------


@on_both
@pytest.mark.parametrize("pipeline", ["in-process", "redis"], indirect=True)
def test_views_are_counted_read_and_drained_in_the_other_database(
    pipeline: str, elsewhere: None
) -> None:
    article = Article.objects.create(title="Routed", slug="routed")
    n = 6
    visitors = distinct_visitors(n)
    responses = asgi_requests(
        [("GET", f"/articles/{article.pk}/", h) for h in visitors[:3]]
        + [("GET", "/plain/", h) for h in visitors[3:]]
    )
    assert [r.status_code for r in responses] == [200] * n
    assert PageView.get_view_count(obj=article) == 3  # live: pending views too
    assert flush() == n
    assert flush() == 0
    assert rows_in("default") == {}
    assert PageView.objects.using(OTHER).count() == n
    assert PageViewDaily.objects.using(OTHER).aggregate(n=Sum("views"))["n"] == n
    assert ProcessedBatch.objects.using(OTHER).exists()
    assert VisitorSalt.objects.using(OTHER).filter(day=current_day()).exists()
    # Content types stay where the site keeps them: none was made in the other database.
    assert ContentType.objects.using(OTHER).count() == 0
    article_type = ContentType.objects.db_manager("default").get_for_model(Article)
    viewed = PageView.objects.filter(object_id=str(article.pk))
    assert {v.content_type for v in viewed} == {article_type}
    assert PageView.get_view_count(obj=article) == 3
    assert article.view_count == 3  # the mixin
    assert PageView.get_view_count(url="/plain/") == 3
    assert PageView.get_popular_objects(Article) == [(article, 3)]
    assert set(PageView.get_popular_urls(limit=5)) == {
        (f"/articles/{article.pk}/", 3),
        ("/plain/", 3),
    }
    assert dict(PageViewTotal.objects.filter(kind="o").values_list("value", "views")) == {
        str(article.pk): 3
    }


@on_both
def test_live_reads_stay_exact_while_the_other_database_drains(
    elsewhere: None, redis_url: str
) -> None:
    """The live reads' consistent snapshot (a Redis snapshot and a database read that agree
    on which claims are committed) is taken on the page views' database: every read made
    while two threads drain a backlog in small claims is exact."""
    with override_settings(PAGEVIEW_BATCH_SIZE=4, PAGEVIEW_STORE_RAW=False):
        total = ship_backlog(120)
        assert total > 0
        check_every_read(total, inside_transaction=False, pages=120)
    assert rows_in("default") == {}
    assert ProcessedBatch.objects.using(OTHER).count() > 10


@on_both
def test_the_ledger_of_batch_ids_is_read_in_the_other_database(elsewhere: None) -> None:
    """A batch id known to ``default`` only does not stop a batch; one known to the other
    database does: the replay changes nothing."""
    ProcessedBatch.objects.using("default").create(batch_id="batch-1", views=0)
    target = Target("/ledger/", "", "", PK, "")
    day = current_day()
    assert write_batch("batch-1", [], Counter({(day, target): 5})) == 5
    assert write_batch("batch-1", [], Counter({(day, target): 5})) == 0
    assert PageView.get_view_count(url="/ledger/") == 5
    assert list(ProcessedBatch.objects.using(OTHER).values_list("batch_id", "views")) == [
        ("batch-1", 5)
    ]
    assert PageViewDaily.objects.using("default").count() == 0


@on_both
@pytest.mark.parametrize("where", ["default", OTHER])
def test_a_deleted_content_type_takes_its_views_along_on_their_database(where: str) -> None:
    ContentType.objects.clear_cache()
    article = Article.objects.create(title="Gone", slug="gone")
    target = Target(f"/articles/{article.pk}/", "", "tests.article", PK, str(article.pk))
    other = Target("/kept/", "", "", PK, "")
    day = current_day()
    with routed(PAGEVIEW_DATABASE=None if where == "default" else OTHER):
        write_batch("b", [], Counter({(day, target): 2, (day, other): 1}))
        PageView.objects.create(url="/a/", content_type=ContentType.objects.get_for_model(Article))
        PageView.objects.create(url="/kept/")
        ContentType.objects.get_for_model(Article).delete()
        assert PageView.objects.using(where).count() == 1
        assert list(PageViewDaily.objects.using(where).values_list("url", "views")) == [
            ("/kept/", 1)
        ]
        # The object's own key went; its URL's stays (a URL names no content type).
        totals = PageViewTotal.objects.using(where)
        assert not totals.filter(content_type__isnull=False).exists()
        assert set(totals.values_list("value", flat=True)) == {target.url, "/kept/"}
    ContentType.objects.clear_cache()


# -- commands, admin, API ------------------------------------------------------------------


@on_both
def test_clean_pageviews_deletes_in_the_other_database(elsewhere: None) -> None:
    old = timezone.now() - timedelta(days=100)
    target = Target("/old/", "", "", PK, "")
    write_batch("old", [], Counter({(old.date(), target): 2}))
    for _ in range(3):
        PageView.objects.create(url="/old/", timestamp=old)
    PageView.objects.create(url="/new/")
    out = StringIO()
    call_command("clean_pageviews", days=90, stdout=out)
    assert "Deleted 3 page views older than 90 days" in out.getvalue()
    assert list(PageView.objects.using(OTHER).values_list("url", flat=True)) == ["/new/"]
    assert PageView.get_view_count(url="/old/") == 2  # the daily totals stay
    assert rows_in("default") == {}


@on_both
def test_status_flush_admin_and_api_read_the_other_database(elsewhere: None) -> None:
    article = Article.objects.create(title="Routed", slug="routed")
    asgi_requests([("GET", f"/articles/{article.pk}/", h) for h in distinct_visitors(2)])
    call_command("pageviews_flush", stdout=StringIO())
    assert PageView.objects.using(OTHER).count() == 2
    status = StringIO()
    call_command("pageviews_status", "--json", stdout=status)
    json.loads(status.getvalue())
    staff = Client()
    staff.force_login(User.objects.create_superuser("admin", password="x"))
    page = staff.get("/admin/django_pageviews/pageview/")
    assert page.status_code == 200
    assert page.content.count(f"/articles/{article.pk}/".encode()) >= 2
    assert staff.get("/admin/django_pageviews/pageviewdaily/").status_code == 200
    dashboard = staff.get("/admin/django_pageviews/pageviewsdashboard/")
    assert dashboard.status_code == 200
    api = staff.get(f"/pageviews/api/total/?model=tests.article&pk={article.pk}")
    assert api.status_code == 200, api.content
    assert json.loads(api.content)["views"] == 2
    assert rows_in("default") == {}


# -- migrations ----------------------------------------------------------------------------


class FreshPair:
    """Two empty databases of the backend under test: SQLite files, or PostgreSQL
    databases made on the server of DATABASE_URL (and dropped afterwards)."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = connections["default"].settings_dict
        self.vendor = connections["default"].vendor
        self.names = {
            alias: str(tmp_path / f"{alias}.sqlite3")
            if self.vendor == "sqlite"
            else f"pv_migrations_{os.getpid()}_{alias}"
            for alias in BOTH
        }
        if self.vendor == "postgresql":
            with self._server() as server:
                for name in self.names.values():
                    server.execute(f'CREATE DATABASE "{name}"')

    def _server(self, name: str = "postgres") -> Any:
        import psycopg  # the postgres extra: only where DATABASE_URL names PostgreSQL

        s = self.settings
        return psycopg.connect(
            dbname=name,
            host=s["HOST"] or None,
            port=s["PORT"] or None,
            user=s["USER"] or None,
            password=s["PASSWORD"] or None,
            autocommit=True,
        )

    def url(self, alias: str) -> str:
        if self.vendor == "sqlite":
            return f"sqlite:///{self.names[alias]}"
        s = self.settings
        login = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        return (
            f"postgres://{login}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{self.names[alias]}"
        )

    def query(self, alias: str, sql: str) -> list[tuple[Any, ...]]:
        if self.vendor == "sqlite":
            with closing(sqlite3.connect(self.names[alias])) as db:
                return list(db.execute(sql))
        with self._server(self.names[alias]) as db:
            return list(db.execute(sql).fetchall())

    def tables(self, alias: str) -> set[str]:
        sql = (
            "SELECT name FROM sqlite_master WHERE type='table'"
            if self.vendor == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return {row[0] for row in self.query(alias, sql)}

    def keys_to_content_types(self, alias: str, tables: set[str]) -> list[str]:
        """The tables among ``tables`` with a foreign key to django_content_type."""
        if self.vendor == "sqlite":
            return [
                t
                for t in sorted(tables)
                if any(
                    r[2] == "django_content_type"
                    for r in self.query(alias, f"PRAGMA foreign_key_list({t})")
                )
            ]
        rows = self.query(
            alias,
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = 'django_content_type'::regclass",
        )
        return sorted(t for (t,) in rows if t in tables)

    def close(self) -> None:
        if self.vendor == "postgresql":
            with self._server() as server:
                for name in self.names.values():
                    server.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def fresh_pair(tmp_path: Path) -> Iterator[FreshPair]:
    if connections["default"].vendor not in ("sqlite", "postgresql"):
        pytest.skip("fresh databases made here on SQLite and PostgreSQL only")
    pair = FreshPair(tmp_path)
    try:
        yield pair
    finally:
        pair.close()


def test_migrations_create_the_tables_in_the_other_database_only(fresh_pair: FreshPair) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEVIEW_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=fresh_pair.url("default"),
        TESTS_PAGEVIEW_DATABASE_URL=fresh_pair.url(OTHER),
        PAGEVIEW_DATABASE=json.dumps(OTHER),
        PYTHONPATH=str(ROOT),
    )

    def django(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    django("migrate", "-v", "0")
    django("migrate", "--database", OTHER, "-v", "0")
    django("check")
    ours = {m._meta.db_table for m in app_models() if not m._meta.proxy}
    assert not ours & fresh_pair.tables("default")
    assert ours <= fresh_pair.tables(OTHER)
    assert "django_content_type" in fresh_pair.tables("default")
    # 0.2.x's 0001 made a key to the other database's (unused) content types: gone (0006).
    assert fresh_pair.keys_to_content_types(OTHER, ours) == []
    plan = django("showmigrations", "django_pageviews", "--database", OTHER)
    assert "[X] 0006_content_type_without_constraint" in plan
