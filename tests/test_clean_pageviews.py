"""``clean_pageviews``: old raw rows go, in chunks; daily totals and counts stay."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_pageviews.events import PK, PageViewEvent, Target
from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
from django_pageviews.storage import target_hash, write_batch
from django_pageviews.totals import add as add_to_keys
from tests.models import Article

pytestmark = pytest.mark.django_db

OLD = dt.timedelta(days=91)  # older than the default cut-off of 90 days
RECENT = dt.timedelta(days=89)


def clean(*args: str) -> str:
    out = StringIO()
    call_command("clean_pageviews", *args, stdout=out)
    return out.getvalue()


def view(url: str, age: dt.timedelta, obj: Article | None = None) -> PageView:
    return PageView.objects.create(
        url=url,
        timestamp=timezone.now() - age,
        content_type=ContentType.objects.get_for_model(Article) if obj else None,
        object_id=str(obj.pk) if obj else None,
    )


def rollup(url: str, day: dt.date, views: int) -> PageViewDaily:
    """A daily row as the drain stores it: with its views added to its keys (totals.py)."""
    key = target_hash(None, "", url, "")
    add_to_keys([(day, key, None, "", url, "", views)], "default")
    return PageViewDaily.objects.create(day=day, target_hash=key, url=url, views=views)


def remaining_ids() -> list[int]:
    return list(PageView.objects.order_by("id").values_list("id", flat=True))


def test_deletes_only_rows_older_than_the_cut_off_and_keeps_the_totals() -> None:
    old = [view("/a/", OLD), view("/a/", OLD + dt.timedelta(days=30)), view("/b/", OLD)]
    recent = [view("/a/", RECENT), view("/b/", dt.timedelta(0))]
    today = timezone.now().date()
    rollup("/a/", today - OLD, 2)
    rollup("/a/", today - RECENT, 1)
    rollup("/b/", today - OLD, 1)
    rollup("/b/", today, 1)
    ProcessedBatch.objects.create(batch_id="b1", views=5)
    daily_before = list(PageViewDaily.objects.order_by("id").values())
    counts_before = (PageView.get_view_count(url="/a/"), PageView.get_view_count(url="/b/"))
    assert counts_before == (3, 2)

    out = clean("--days=90")

    assert remaining_ids() == [v.pk for v in recent]
    assert out.splitlines() == [
        f"Deleted {len(old)} of {len(old)}",
        "Deleted 3 page views older than 90 days; daily totals kept.",
    ]
    assert list(PageViewDaily.objects.order_by("id").values()) == daily_before
    assert PageViewDaily.objects.aggregate(total=Sum("views"))["total"] == 5
    assert (PageView.get_view_count(url="/a/"), PageView.get_view_count(url="/b/")) == (3, 2)
    assert list(ProcessedBatch.objects.values_list("batch_id", flat=True)) == ["b1"]


def test_default_is_90_days() -> None:
    old, recent = view("/a/", OLD), view("/a/", RECENT)
    clean()
    assert remaining_ids() == [recent.pk]
    assert not PageView.objects.filter(pk=old.pk).exists()


def test_days_moves_the_cut_off() -> None:
    views = [view("/a/", dt.timedelta(days=d, hours=1)) for d in (1, 2, 3, 4)]
    out = clean("--days=3")
    assert remaining_ids() == [views[0].pk, views[1].pk]
    assert out.splitlines()[-1] == "Deleted 2 page views older than 3 days; daily totals kept."


def test_nothing_old_says_so_and_deletes_nothing() -> None:
    recent = view("/a/", RECENT)
    assert clean().splitlines() == ["No page views older than 90 days."]
    assert remaining_ids() == [recent.pk]


def test_keep_unique_keeps_the_newest_old_row_of_each_target() -> None:
    article, other = Article.objects.create(slug="a"), Article.objects.create(slug="b")
    # Written oldest first, as the pipeline writes them: the highest id is the newest.
    a1 = view("/a/", OLD + dt.timedelta(days=5))
    a2 = view("/a/", OLD + dt.timedelta(days=1))
    a3 = view("/a/", OLD)
    b1 = view("/b/", OLD)
    art1 = view("/art/", OLD + dt.timedelta(days=2), article)
    art2 = view("/art/", OLD, article)
    # Same URL, another object: a target of its own.
    oth = view("/art/", OLD, other)
    recent_a = view("/a/", RECENT)
    recent_art = view("/art/", RECENT, article)

    out = clean("--keep-unique")

    assert remaining_ids() == [a3.pk, b1.pk, art2.pk, oth.pk, recent_a.pk, recent_art.pk]
    deleted = [a1.pk, a2.pk, art1.pk]
    assert not PageView.objects.filter(pk__in=deleted).exists()
    assert out.splitlines() == [
        "Deleted 3 of 3",
        "Deleted 3 page views older than 90 days; daily totals kept.",
    ]


def test_keep_unique_computes_the_rows_to_keep_in_one_grouped_query() -> None:
    for _ in range(3):
        view("/a/", OLD)
        view("/b/", OLD)
    with CaptureQueriesContext(connection) as queries:
        clean("--keep-unique", "--dry-run")
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"].upper()]
    assert len(grouped) == 1
    assert PageView.objects.count() == 6


def test_dry_run_deletes_nothing_and_prints_the_count() -> None:
    for _ in range(4):
        view("/a/", OLD)
    view("/b/", OLD)
    view("/a/", RECENT)
    before = remaining_ids()
    assert clean("--dry-run").splitlines() == [
        "Would delete 5 of 5 page views older than 90 days (dry run, nothing deleted)."
    ]
    assert clean("--dry-run", "--keep-unique").splitlines() == [
        "Would delete 3 of 5 page views older than 90 days (dry run, nothing deleted)."
    ]
    assert remaining_ids() == before


def test_deletes_in_chunks_each_in_its_own_statement() -> None:
    old = [view(f"/p{i}/", OLD) for i in range(7)]
    recent = view("/p0/", RECENT)
    with CaptureQueriesContext(connection) as queries:
        out = clean("--chunk-size=2")
    assert remaining_ids() == [recent.pk]
    assert out.splitlines() == [
        "Deleted 2 of 7",
        "Deleted 4 of 7",
        "Deleted 6 of 7",
        "Deleted 7 of 7",
        "Deleted 7 page views older than 90 days; daily totals kept.",
    ]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 5
    assert "dailyvisitor" in deletes.pop(0)  # the old visitor hashes (none here)
    # Each DELETE names its chunk's ids, at most two of them.
    deleted_ids = [sorted(int(i) for i in re.findall(r"\d+", d.split(" IN ")[1])) for d in deletes]
    assert deleted_ids == [[v.pk for v in old[i : i + 2]] for i in range(0, 7, 2)]


def test_chunks_skip_kept_rows_without_looping_on_them() -> None:
    # Every chunk of two holds rows of two targets, the newest of which is kept.
    rows = [view(url, OLD) for url in ("/a/", "/b/", "/a/", "/b/", "/a/", "/b/")]
    out = clean("--keep-unique", "--chunk-size=2")
    assert remaining_ids() == [rows[4].pk, rows[5].pk]
    assert out.splitlines() == [
        "Deleted 2 of 4",
        "Deleted 4 of 4",
        "Deleted 4 page views older than 90 days; daily totals kept.",
    ]


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", ""])
def test_bad_days_is_a_command_error(value: str) -> None:
    old = view("/a/", OLD)
    with pytest.raises(CommandError) as info:
        clean(f"--days={value}")
    assert str(info.value) == f"--days must be a positive integer, not {value!r}."
    assert remaining_ids() == [old.pk]


@pytest.mark.parametrize("value", [0, -1, "x"])
def test_bad_days_given_to_call_command_is_a_command_error(value: object) -> None:
    with pytest.raises(CommandError, match="^--days must be a positive integer, not "):
        call_command("clean_pageviews", days=value, stdout=StringIO())


def test_bad_chunk_size_is_a_command_error() -> None:
    with pytest.raises(CommandError, match=r"^--chunk-size must be a positive integer, not '0'\.$"):
        clean("--chunk-size=0")


@override_settings(PAGEVIEW_RAW_RETENTION_DAYS=30)
def test_the_retention_setting_is_the_default_cut_off_and_days_still_wins() -> None:
    older, newer, newest = (view("/a/", dt.timedelta(days=d, hours=1)) for d in (30, 29, 1))
    out = clean()
    assert remaining_ids() == [newer.pk, newest.pk]
    assert out.splitlines()[-1] == "Deleted 1 page views older than 30 days; daily totals kept."
    assert not PageView.objects.filter(pk=older.pk).exists()
    clean("--days=2")
    assert remaining_ids() == [newest.pk]


@pytest.mark.django_db(transaction=True)
@override_settings(PAGEVIEW_RAW_RETENTION_DAYS=30)
def test_retention_keeps_every_count_the_site_reads() -> None:
    """Views drained 40 days ago and today: after the clean, the raw rows of 40 days ago
    are gone and every read (counts, lists, days) answers as before."""
    article = Article.objects.create(title="Kept", slug="kept")
    target = Target(
        f"/articles/{article.pk}/", "article-detail", "tests.article", PK, str(article.pk)
    )
    now = timezone.now()
    events = [
        PageViewEvent(
            uuid.uuid4().hex, (now - dt.timedelta(days=d)).timestamp(), target, None, "", ""
        )
        for d in (40, 40, 0)
    ]
    assert write_batch("b", events) == 3

    def reads() -> tuple[object, ...]:
        return (
            PageView.get_view_count(obj=article),
            PageView.get_view_count(url=target.url),
            PageView.get_views_by_period(article, days=60),
            PageView.get_daily_views(article, days=60),
            PageView.get_popular_urls(limit=5),
            PageView.get_popular_objects(Article),
        )

    before = reads()
    assert before[0] == 3
    clean()
    assert PageView.objects.count() == 1
    assert reads() == before
