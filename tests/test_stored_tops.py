"""Most-viewed lists from the per-key rows equal the sums of the daily rows, exactly.

More keys than a round reads (stored_tops.py reads 16 to 50 rows per list at first), equal
totals at the limit, periods shorter and longer than MAX_LIST_DAYS, and all time.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings

from django_pageviews.events import PK, Target, current_day
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.storage import write_batch
from django_pageviews.stored_tops import MAX_LIST_DAYS
from tests.conftest import HELD_WRITER, asgi_requests, distinct_visitors
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

ARTICLES = 120
HISTORY = MAX_LIST_DAYS + 20


def brute_force(column: str, days: int | None, **filters: object) -> list[tuple[str, int]]:
    rows = PageViewDaily.objects.filter(**filters)
    if days is not None:
        rows = rows.filter(day__gte=current_day() - timedelta(days=days - 1))
    sums: Counter[str] = Counter()
    for key, n in rows.values_list(column, "views"):
        if key:
            sums[key] += n
    return sorted(((k, n) for k, n in sums.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))


@pytest.fixture
def history() -> list[Article]:
    """Articles with skewed, changing popularity over ``HISTORY`` days, many equal counts,
    two URLs per article, a few view names."""
    rng = random.Random(11)
    articles = [Article.objects.create(title=f"T{i}", slug=f"s{i}") for i in range(ARTICLES)]
    today = current_day()
    totals: Counter[tuple[object, Target]] = Counter()
    for age in range(HISTORY):
        day = today - timedelta(days=age)
        for i, article in enumerate(articles):
            rank = (i + age // 7) % ARTICLES + 1  # popularity shifts every week
            views = max(0, int(300 / rank) - rng.randrange(3))
            if views:
                view = f"view-{i % 3}"
                target = Target(f"/a/{article.pk}/", view, "tests.article", PK, str(article.pk))
                totals[(day, target)] += views
            if rng.random() < 0.3:  # a second page of the same article, by slug
                target = Target(
                    f"/s/{article.slug}/", "slug", "tests.article", "slug", article.slug
                )
                totals[(day, target)] += 2
    write_batch("history", [], totals)  # type: ignore[arg-type]
    return articles


@pytest.mark.parametrize("days", [1, 7, MAX_LIST_DAYS, MAX_LIST_DAYS + 5, None])
@pytest.mark.parametrize("limit", [1, 5, 40])
def test_lists_equal_the_daily_sums(history: list[Article], days: int | None, limit: int) -> None:
    assert PageView.get_popular_urls(limit=limit, days=days) == brute_force("url", days)[:limit]
    assert (
        PageView.get_popular_view_names(limit=limit, days=days)
        == brute_force("view_name", days)[:limit]
    )
    ct = ContentType.objects.get_for_model(Article)
    expected = brute_force("object_id", days, content_type=ct)[:limit]
    got = PageView.get_popular_objects(Article, limit=limit, days=days)
    assert [(str(obj.pk), n) for obj, n in got] == expected


def with_pending(stored: list[tuple[str, int]], pending: Counter[str]) -> list[tuple[str, int]]:
    sums = Counter(dict(stored)) + pending
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))


# The views stay pending while the expected lists are summed from the database: the
# in-process writer's age flush (1 s) would write them on a loaded machine, and the
# expectation would count them twice.
HOLD = override_settings(**HELD_WRITER)


@HOLD
@pytest.mark.parametrize("days", [1, 7, MAX_LIST_DAYS + 5, None])
def test_lists_count_pending_views_exactly(
    history: list[Article], pipeline: str, days: int | None
) -> None:
    """Views not yet written (Redis or the in-process buffer) lift a low-ranked article
    and add new keys: the lists equal the daily sums plus those views."""
    low, other = history[60], history[70]
    visit(f"/articles/{low.pk}/", 40)
    visit(f"/by-slug/{other.slug}/", 25)
    urls = Counter({f"/articles/{low.pk}/": 40, f"/by-slug/{other.slug}/": 25})
    names = Counter({"article-detail": 40, "article-slug": 25})
    objects = Counter({str(low.pk): 40, str(other.pk): 25})
    ct = ContentType.objects.get_for_model(Article)
    for limit in (3, 30):
        expected = with_pending(brute_force("url", days), urls)[:limit]
        assert PageView.get_popular_urls(limit=limit, days=days) == expected
        expected = with_pending(brute_force("view_name", days), names)[:limit]
        assert PageView.get_popular_view_names(limit=limit, days=days) == expected
        expected = with_pending(brute_force("object_id", days, content_type=ct), objects)
        got = PageView.get_popular_objects(Article, limit=limit, days=days)
        assert [(str(obj.pk), n) for obj, n in got] == expected[:limit]


def visit(path: str, n: int) -> None:
    responses = asgi_requests([("GET", path, h) for h in distinct_visitors(n)])
    assert [r.status_code for r in responses] == [200] * n


@pytest.mark.parametrize("days", [7, None])
def test_deleted_objects_leave_the_next_ones_in_their_place(
    history: list[Article], days: int | None
) -> None:
    """The list is ranked as deep as asked; when deleted objects leave it short, it is
    ranked deeper until it is full (or every key is ranked)."""
    ct = ContentType.objects.get_for_model(Article)
    ranked = brute_force("object_id", days, content_type=ct)
    gone = {pk for pk, _ in ranked[:7]}
    Article.objects.filter(pk__in=[int(pk) for pk in gone]).delete()
    expected = [(pk, n) for pk, n in ranked if pk not in gone]
    for limit in (3, 10):
        got = PageView.get_popular_objects(Article, limit=limit, days=days)
        assert [(str(obj.pk), n) for obj, n in got] == expected[:limit]


@HOLD
@pytest.mark.parametrize("days", [7, None])
def test_a_stale_guess_still_gives_the_exact_list(
    history: list[Article], pipeline: str, days: int | None
) -> None:
    """A live list asks Redis first about the keys the same list needed last time
    (ranking.py). After the database's top changes under it (a batch written directly,
    views pending for others), the list is still exactly the sums."""
    ct = ContentType.objects.get_for_model(Article)
    PageView.get_popular_objects(Article, limit=5, days=days)  # remembers its keys
    low, other = history[90], history[100]
    target = Target(f"/a/{low.pk}/", "view-0", "tests.article", PK, str(low.pk))
    write_batch("jump", [], Counter({(current_day(), target): 50_000}))
    visit(f"/articles/{other.pk}/", 30)
    pending = Counter({str(other.pk): 30})
    expected = with_pending(brute_force("object_id", days, content_type=ct), pending)[:5]
    got = PageView.get_popular_objects(Article, limit=5, days=days)
    assert [(str(obj.pk), n) for obj, n in got] == expected
    assert expected[0] == (str(low.pk), expected[0][1])
