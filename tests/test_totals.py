"""The per-key rows (totals.py) equal the sums of the daily rows after every write path."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError
from django.test import override_settings

from django_pageviews.events import PK, PageViewEvent, Target, local_day
from django_pageviews.models import PageViewDaily, PageViewKeyDaily, PageViewTotal
from django_pageviews.storage import write_batch, write_once
from django_pageviews.totals import OBJECT, URL, VIEW, key_hash, rebuild
from tests.db_faults import allow_all, refuse_url
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86400.0


def event(target: Target, days_ago: int = 0) -> PageViewEvent:
    return PageViewEvent(
        event_id=uuid.uuid4().hex,
        timestamp=time.time() - days_ago * DAY,
        target=target,
        ip_address="192.0.2.0",
        user_agent="ua",
        visitor_hash="0" * 32,
    )


def expected_keys() -> Counter[tuple[date, str, int | None, str]]:
    """(day, kind, content type, value) -> views, summed here from the daily rows."""
    sums: Counter[tuple[date, str, int | None, str]] = Counter()
    for day, ct, oid, url, view, n in PageViewDaily.objects.values_list(
        "day", "content_type_id", "object_id", "url", "view_name", "views"
    ):
        sums[(day, URL, None, url)] += n
        if view:
            sums[(day, VIEW, None, view)] += n
        if ct is not None:
            sums[(day, OBJECT, ct, oid)] += n
    return +sums


def assert_keys_match_daily() -> None:
    daily = expected_keys()
    stored: Counter[tuple[date, str, int | None, str]] = Counter()
    for day, kind, ct, value, h, views in PageViewKeyDaily.objects.values_list(
        "day", "kind", "content_type_id", "value", "key_hash", "views"
    ):
        assert h == key_hash(kind, ct, value)
        stored[(day, kind, ct, value)] += views
    assert +stored == daily
    all_time: Counter[tuple[str, int | None, str]] = Counter()
    for (_, *key), views in daily.items():
        all_time[tuple(key)] += views  # type: ignore[index]
    totals = Counter(
        {
            (k, ct, v): n
            for k, ct, v, n in PageViewTotal.objects.values_list(
                "kind", "content_type_id", "value", "views"
            )
        }
    )
    assert +totals == all_time


def article_targets() -> list[Target]:
    a = Article.objects.create(title="A", slug="a")
    b = Article.objects.create(title="B", slug="b")
    return [
        Target(f"/articles/{a.pk}/", "article-detail", "tests.article", PK, str(a.pk)),
        Target("/by-slug/a/", "article-slug", "tests.article", "slug", "a"),
        Target(f"/articles/{b.pk}/", "article-detail", "tests.article", PK, str(b.pk)),
        Target("/plain/", "", "", "", ""),
        Target("/missing/", "article-slug", "tests.article", "slug", "nope"),
    ]


def test_every_batch_adds_to_its_keys_on_each_day() -> None:
    targets = article_targets()
    write_batch("b1", [event(t, days_ago=i % 3) for i, t in enumerate(targets * 3)])
    write_batch("b2", [event(targets[0]), event(targets[1], days_ago=40)])
    assert_keys_match_daily()
    ct = ContentType.objects.get_for_model(Article).pk
    a_pk = targets[0].value
    # Object A counts by pk and by slug, on every day.
    assert PageViewTotal.objects.get(key_hash=key_hash(OBJECT, ct, a_pk)).views == 8


def test_a_replayed_batch_adds_nothing_to_the_keys() -> None:
    targets = article_targets()
    events = [event(t) for t in targets]
    assert write_batch("same", events) == 5
    assert write_batch("same", events) == 0
    assert_keys_match_daily()


def test_counts_written_apart_from_their_events() -> None:
    """The Redis path: counts by (day, target), raw events apart."""
    targets = article_targets()
    day = local_day(time.time())
    write_batch("counts", [], {(day, t): 4 for t in targets})
    write_batch("old", [], {(day - timedelta(days=9), targets[0]): 2})
    assert_keys_match_daily()


def test_withdrawn_duplicates_are_taken_off_the_keys() -> None:
    """A duplicate's count taken off a daily row written by another batch (storage's
    ``_withdraw``), also beyond what the row holds (the row stops at 0, the keys too)."""
    target = article_targets()[0]
    e = event(target)
    day = local_day(e.timestamp)
    assert write_batch("first", [e], {(day, target): 1}) == 1
    write_batch("copy-event", [e], {})
    assert_keys_match_daily()
    write_batch("copy-count", [], {(day, target): 1})
    assert PageViewDaily.objects.get().views == 1
    assert_keys_match_daily()
    # Three copies of a view whose count the row no longer holds in full.
    write_batch("copies", [e, e, e], {})
    assert PageViewDaily.objects.get().views == 0
    assert_keys_match_daily()


def test_a_refused_batch_changes_no_key() -> None:
    targets = article_targets()
    write_batch("ok", [event(t) for t in targets])
    refuse_url(PageViewDaily, "/poison/")
    try:
        with pytest.raises(DatabaseError):
            write_batch("bad", [event(targets[0]), event(Target("/poison/", "", "", "", ""))])
    finally:
        allow_all(PageViewDaily)
    assert_keys_match_daily()
    # Replayed later (as a set-aside record is), the batch counts once.
    assert write_once("bad", [event(targets[0])], replacing_invalid=True) == 1
    assert_keys_match_daily()


@override_settings(PAGEVIEW_MAX_NEW_URLS_PER_DAY=2)
def test_urls_past_the_cap_count_under_the_overflow_url() -> None:
    write_batch("wide", [event(Target(f"/p/{i}/", "page", "", "", "")) for i in range(5)])
    assert PageViewDaily.objects.count() == 3
    assert_keys_match_daily()


def test_rebuild_gives_what_the_drain_kept() -> None:
    """Migration 0006 fills the key rows of the daily rows stored before it."""
    targets = article_targets()
    write_batch("b1", [event(t, days_ago=i) for i, t in enumerate(targets * 2)])
    kept = set(PageViewKeyDaily.objects.values_list("day", "key_hash", "views"))
    totals = set(PageViewTotal.objects.values_list("key_hash", "kind", "value", "views"))
    PageViewKeyDaily.objects.all().delete()
    PageViewTotal.objects.all().delete()
    rebuild("default")
    assert set(PageViewKeyDaily.objects.values_list("day", "key_hash", "views")) == kept
    assert set(PageViewTotal.objects.values_list("key_hash", "kind", "value", "views")) == totals
    # Only some days: those are replaced, the all-time rows recomputed.
    first = min(day for day, _, _ in kept)
    PageViewDaily.objects.filter(day=first).update(views=0)
    rebuild("default", days=[first])
    assert_keys_match_daily()
