"""Most-viewed lists under flat traffic (decision 43): exact, in a few rounds, and no call
to Redis does more than its budget.

Flat: every stored article has the same views, thousands of distinct pages are pending
with 1-5 views each (thousands of equal counts), and the lists are compared with sums
made here from what was written and shipped.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import override_settings

from django_pageviews import ranking
from django_pageviews.events import PK, Target, current_day
from django_pageviews.models import PageView
from django_pageviews.redis.buffer import Keys
from django_pageviews.redis.client import get_client
from django_pageviews.redis.snapshots import ListsOverBudget, snapshot_lists
from django_pageviews.stats import READ_ERROR
from django_pageviews.stats import snapshot as stats_snapshot
from django_pageviews.storage import write_batch
from django_pageviews.stored_tops import StoredTop
from django_pageviews.toplists import LIST_BUCKETS, READ_BUDGET, URL, list_name, name_shard
from tests.models import Article
from tests.test_live_reads import script_calls, ship_totals

pytestmark = pytest.mark.django_db(transaction=True)

ARTICLES = 240
PENDING = 4_000
STORED = 8  # views of every article on each of two stored days
SHARDS = 3
LABEL = "tests.article"

Views = dict[tuple[date, Target], int]


def by_pk(a: Article, i: int) -> Target:
    return Target(f"/a/{a.pk}/", f"view-{i % 20}", LABEL, PK, str(a.pk))


def by_slug(a: Article, i: int) -> Target:
    return Target(f"/s/{a.slug}/", f"view-{i % 20}", LABEL, "slug", a.slug)


@pytest.fixture(params=["apart", "on stored"])
def flat(request: Any, redis_url: str) -> tuple[Views, Views, dict[str, str]]:
    """Stored: every article ``STORED`` views yesterday and ten days ago. Pending today:
    ``PENDING`` distinct pages of 1-5 views, 400 view names; "on stored": the first ones
    are the stored articles (by pk or by slug), whose totals then tie at the top."""
    stored, pending, pks = flat_views(request.param == "on stored")
    write_batch(uuid.uuid4().hex, [], stored)
    ship_totals(pending)
    return stored, pending, pks


def flat_views(on_stored: bool) -> tuple[Views, Views, dict[str, str]]:
    """The ``flat`` fixture's articles (created), stored and pending views (not written)."""
    today = current_day()
    articles = [Article.objects.create(title=str(i), slug=f"s-{i}") for i in range(ARTICLES)]
    stored: Views = {}
    for i, a in enumerate(articles):
        for age in (1, 10):
            stored[(today - timedelta(days=age), by_pk(a, i))] = STORED
    pending: Views = {}
    for j in range(PENDING):
        if on_stored and j < ARTICLES:
            target = (by_slug if j % 2 else by_pk)(articles[j], j)
        else:
            target = Target(f"/p/{j}/", f"page-{j % 400}", "", "", "")
        pending[(today, target)] = 1 + (j * 7919) % 5
    return stored, pending, {a.slug: str(a.pk) for a in articles}


def expected(
    flat: tuple[Views, Views, dict[str, str]], what: str, days: int | None
) -> list[tuple[str, int]]:
    stored, pending, pks = flat
    first = None if days is None else current_day() - timedelta(days=days - 1)
    totals: Counter[str] = Counter()
    for source in (stored, pending):
        for (day, t), n in source.items():
            if first is not None and day < first:
                continue
            if what == "url":
                totals[t.url] += n
            elif what == "view":
                totals[t.view_name] += n
            elif t.model:
                totals[pks.get(t.value, t.value)] += n
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def check_flat_lists(
    flat: tuple[Views, Views, dict[str, str]], days: int | None, rounds: int
) -> None:
    """Every list (URLs, view names, objects; limits 1, 10, 25) equal to the sums, each
    URL list in at most ``rounds`` script calls, and no read fell back."""
    client = get_client()
    errors = stats_snapshot().get(READ_ERROR, 0)
    for limit in (1, 10, 25):
        calls = script_calls(client)
        assert (
            PageView.get_popular_urls(limit=limit, days=days) == expected(flat, "url", days)[:limit]
        )
        # Each round is one script call per shard (and ACK/SHIP run none here).
        assert script_calls(client) - calls <= rounds
        got = PageView.get_popular_view_names(limit=limit, days=days)
        assert got == expected(flat, "view", days)[:limit]
        objects = PageView.get_popular_objects(Article, limit=limit, days=days)
        assert [(str(o.pk), n) for o, n in objects] == expected(flat, "object", days)[:limit]
    assert stats_snapshot().get(READ_ERROR, 0) == errors  # never fell back


@pytest.mark.parametrize("days", [7, None])
def test_flat_lists_are_exact_in_a_few_rounds(
    flat: tuple[Views, Views, dict[str, str]], days: int | None
) -> None:
    check_flat_lists(flat, days, rounds=4)


@pytest.mark.usefixtures("redis_url")
@pytest.mark.parametrize("on_stored", [False, True])
@override_settings(PAGEVIEW_BUFFER_SHARDS=SHARDS)
def test_flat_lists_are_exact_with_the_buffer_in_shards(on_stored: bool) -> None:
    """The same flat traffic spread over three shards (decision 42), half the pending
    keys with views in two of them: each shard's copy of a list is read as a list of its
    own, in a call of its own within the budget, and the lists are still the sums."""
    stored, pending, pks = flat_views(on_stored)
    write_batch(uuid.uuid4().hex, [], stored)
    parts: list[Views] = [{} for _ in range(SHARDS)]
    for j, (entry, n) in enumerate(pending.items()):
        if n > 1 and j % 2:  # one of its views in the next shard
            parts[(j + 1) % SHARDS][entry] = 1
            n -= 1
        parts[j % SHARDS][entry] = n
    for shard, part in enumerate(parts):
        ship_totals(part, shard)
    client = get_client()
    waiting = [int(client.hget(Keys.shard(n).dims, "t") or 0) for n in range(SHARDS)]
    assert waiting == [sum(part.values()) for part in parts]
    assert sum(waiting) == sum(pending.values())
    snap = snapshot_lists(client, "u|", "", "", 2, [])
    assert {name_shard(name) for name in snap.tops} == set(range(SHARDS))
    assert 0 < snap.work <= READ_BUDGET
    for days in (7, None):
        check_flat_lists((stored, pending, pks), days, rounds=4 * SHARDS)


def test_a_round_is_planned_within_the_budget_of_each_shards_call() -> None:
    """Each shard's SNAPSHOT_LISTS call is bounded alone: a round's work is its busiest
    shard's (two lists here), asked for every key of the plan in each list."""
    plan = ranking._Plan(64, 64, {"/a/", "/b/", "/c/"})
    per_list = 1 + (LIST_BUCKETS + 1) * ranking.per_set(64) + 3
    assert ranking.work(plan, Counter({0: 2, 1: 2, 2: 1})) == 2 * per_list
    assert ranking.work(plan, Counter({0: 2})) == 2 * per_list
    assert ranking.work(plan, Counter()) == 0


def test_a_round_that_cannot_read_deeper_within_the_budget_asks_for_the_keys_found() -> None:
    """Under flat traffic with shards, most keys are read in one shard's copy of a list
    only (a call looks members up in its own shard's lists): when reading deeper does not
    fit in a call's budget, the next round keeps its depths and asks for the keys found
    (a read seen in test_flat_lists_are_exact_with_the_buffer_in_shards after a plan
    remembered from the unsharded test, which fell back to the stored counts before)."""
    today = current_day()
    stored = StoredTop(URL, None, today, today)
    plan = ranking._Plan(1024, 1024, {f"/g/{i}/" for i in range(480)})
    found = {f"/p/{i}/" for i in range(4_071)}
    lists = Counter({0: 1, 1: 1, 2: 1})
    out = ranking._Outcome(None, found, True, 0, 3, lists, True, frozenset({URL}))
    deeper = ranking._deeper(stored, ranking.urls(), plan, out, lists)
    assert deeper is not None
    assert (deeper.db, deeper.lists, deeper.guess) == (1024, 1024, plan.guess | found)
    assert ranking.work(ranking._Plan(1024, 4 * 1024, deeper.guess), lists) > READ_BUDGET
    assert ranking.work(deeper, lists) <= READ_BUDGET
    # Asked for already, and still no deeper plan fits: none.
    assert ranking._deeper(stored, ranking.urls(), deeper, out, lists) is None


@pytest.mark.usefixtures("redis_url")
def test_a_call_does_no_more_than_its_budget() -> None:
    """SNAPSHOT_LISTS counts the entries it reads and the members it looks up: never more
    than the budget; a read that could take more is refused before anything is read."""
    today = current_day()
    pending: Views = {}
    for day in (today, today - timedelta(days=1)):  # two lists: members asked in both
        for j in range(3_000):
            pending[(day, Target(f"/p/{j}/", "", "", "", ""))] = 1 + (j * 7919) % 5
    ship_totals(pending)
    client = get_client()
    ask = [(URL, f"/p/{j}/") for j in range(0, 3_000, 3)]
    names = {list_name(URL, day) for day, _ in pending}
    for c, budget in ((2, 3_000), (10, 5_000), (10, 100_000), (40, 6_000)):
        # The registry, then per list: its earlier version's set, its sets, the asks.
        need = 2 + len(names) * (1 + (LIST_BUCKETS + 1) * c + len(ask))
        if need > budget:
            with pytest.raises(ListsOverBudget):
                snapshot_lists(client, "u|", "", "", c, ask, budget)
            continue
        snap = snapshot_lists(client, "u|", "", "", c, ask, budget)
        assert set(snap.tops) == names
        entries = sum(len(top) for top in snap.tops.values())
        assert entries == len(names) * LIST_BUCKETS * c  # every set holds more than c
        assert snap.work <= budget
        # The registry, each list's earlier version's set, the entries, the members asked
        # (in both lists, but not where they were read already), and members of each top
        # looked up in the other list while the budget lasted.
        asked = {m for _, m in ask}
        looked_up = sum(len(asked - {m for m, _ in snap.tops[name]}) for name in names)
        cross = snap.work - 2 - len(names) - entries - looked_up
        assert 0 <= cross <= entries
        for name in names:
            day = date.fromisoformat(name[-10:])
            for member in snap.asked[name]:
                page = Target(member, "", "", "", "")
                assert snap.views.get((name, member), 0) == pending.get((day, page), 0)


@pytest.mark.usefixtures("redis_url")
def test_a_list_over_the_budget_falls_back_to_the_stored_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where no round fits in the budget, the list is the database's (and this
    process's) at once, counted and logged as a failed live read, as when Redis fails."""
    today = current_day()
    stored = {(today, Target(f"/a/{i}/", "", "", "", "")): STORED for i in range(300)}
    pending = {(today, Target(f"/p/{j}/", "", "", "", "")): 1 for j in range(2_000)}
    write_batch(uuid.uuid4().hex, [], stored)
    ship_totals(pending)
    monkeypatch.setattr(ranking, "READ_BUDGET", 200)  # the 300 stored keys need more
    errors = stats_snapshot().get(READ_ERROR, 0)
    urls = sorted(f"/a/{i}/" for i in range(300))
    assert PageView.get_popular_urls(limit=5) == [(url, STORED) for url in urls[:5]]
    assert stats_snapshot().get(READ_ERROR, 0) == errors + 1


@pytest.mark.parametrize("days", [1, None])
def test_equal_totals_rank_by_the_keys_bytes_on_every_database(
    pipeline: str, days: int | None
) -> None:
    """The database reads equal totals in the keys' byte order (Python's), whatever the
    column's collation (MariaDB's compares "/B/" and "/a/" without case, PostgreSQL's
    en_US skips punctuation): the tie that ends the rounds is then the right one."""
    today = current_day()
    keys = [f"/{w}-{i}/" for w in ("a", "B", "é", "b", "A", "a.b", "a-b") for i in range(6)]
    stored = {(today, Target(key, "", "", "", "")): 5 for key in keys}
    write_batch(uuid.uuid4().hex, [], stored)
    expected = sorted((key, 5) for key in keys)
    for limit in (1, 7, 20):
        assert PageView.get_popular_urls(limit=limit, days=days) == expected[:limit]


# Keys that cannot rank are not looked for in the database.

HEAD = 30  # stored URLs /h/0/../h/29/ with 100 - i views


@pytest.mark.usefixtures("redis_url")
@pytest.mark.parametrize("days", [7, None])
def test_keys_that_cannot_rank_are_not_summed_in_the_database(days: int | None) -> None:
    """The lists name thousands of keys with a few pending views: only those whose most
    (the database's bound, as the head did not read them, plus their pending views) could
    reach the head's 10th total are summed in the database; the others are left out, and
    the list is still the sums, a key lifted from below the head by its pending views and
    one that ties with the 10th included."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_pageviews.totals import URL as URL_ROWS
    from django_pageviews.totals import key_hash

    today = current_day()
    stored: Views = {
        (today - timedelta(days=1), Target(f"/h/{i}/", "", "", "", "")): 100 - i
        for i in range(HEAD)
    }
    write_batch(uuid.uuid4().hex, [], stored)
    lifted, tied, below = "/h/25/", "/h/22/", "/h/29/"  # 75, 78 and 71 views stored
    pending: Views = {(today, Target(f"/p/{j}/", "", "", "", "")): 1 + j % 5 for j in range(2_000)}
    for url, n in ((lifted, 30), (tied, 14), (below, 5)):  # 105, 92 (the 10th's) and 76
        pending[(today, Target(url, "", "", "", ""))] = n
    ship_totals(pending)
    want = expected((stored, pending, {}), "url", days)[:10]
    assert want[0] == (lifted, 105) and want[-1] == (tied, 92)  # before /h/8/'s 92
    with CaptureQueriesContext(connection) as queries:
        assert PageView.get_popular_urls(limit=10, days=days) == want
    sql = "".join(q["sql"] for q in queries.captured_queries)  # with their parameters
    assert key_hash(URL_ROWS, None, lifted) in sql and key_hash(URL_ROWS, None, tied) in sql
    assert key_hash(URL_ROWS, None, below) not in sql
    assert not any(key_hash(URL_ROWS, None, f"/p/{j}/") in sql for j in range(2_000))


Read = Callable[[], tuple[list[tuple[str, int]], int]]


def remembered_articles() -> tuple[list[Article], Views, Views, Read]:
    """12 articles, 50 + i views stored and 1-3 pending by pk; and a read of their top 5
    (by pk, with its queries of the articles' slugs), made once: the list is remembered."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    today = current_day()
    articles = [Article.objects.create(title=str(i), slug=f"r-{i}") for i in range(12)]
    stored: Views = {
        (today - timedelta(days=1), by_pk(a, i)): 50 + i for i, a in enumerate(articles)
    }
    write_batch(uuid.uuid4().hex, [], stored)
    pending: Views = {(today, by_pk(a, i)): 1 + i % 3 for i, a in enumerate(articles)}
    ship_totals(pending)

    def read() -> tuple[list[tuple[str, int]], int]:
        with CaptureQueriesContext(connection) as queries:
            got = PageView.get_popular_objects(Article, limit=5)
        sql = [q["sql"] for q in queries.captured_queries]
        return [(str(o.pk), n) for o, n in got], sum(
            "tests_article" in q and "title" not in q for q in sql
        )

    pks = {a.slug: str(a.pk) for a in articles}
    assert read() == (expected((stored, pending, pks), "object", None)[:5], 1)
    return articles, stored, pending, read


@pytest.mark.usefixtures("redis_url")
def test_a_remembered_list_asks_for_slugs_only_when_it_saw_their_lists() -> None:
    """A list read again asks for the kinds of lists it saw last time: with only lists by
    pk pending, no query for the articles' slugs; the entries of a list by slug shipped
    since are resolved to their articles (and the slugs asked for from then on), and the
    list is still the sums."""
    articles, stored, pending, read = remembered_articles()
    pks = {a.slug: str(a.pk) for a in articles}
    assert read() == (expected((stored, pending, pks), "object", None)[:5], 0)
    by_slug_views: Views = {(current_day(), by_slug(articles[0], 0)): 40}  # to the top
    ship_totals(by_slug_views)
    top5 = expected((stored, {**pending, **by_slug_views}, pks), "object", None)[:5]
    assert top5[0] == (str(articles[0].pk), 50 + 1 + 40)
    assert read() == (top5, 1)  # the entries read by slug resolved to their articles
    assert read() == (top5, 1)  # the lists by slug remembered: asked for by slug


@pytest.mark.usefixtures("redis_url")
def test_a_remembered_list_asks_again_for_every_kind_when_a_new_kind_is_cut() -> None:
    """A list by slug shipped since, too long to be read whole: the articles' views in it
    are not known from the first round (their slugs were not asked for), whose ceilings
    then stop it; the round after asks for every kind, and the list is the sums."""
    articles, stored, pending, read = remembered_articles()
    pks = {a.slug: str(a.pk) for a in articles}
    today = current_day()
    more: Views = {(today, Target(f"/x/{j}/", "", LABEL, "slug", f"x-{j}")): 5 for j in range(600)}
    more[(today, by_slug(articles[0], 0))] = 3  # not among the first entries read
    ship_totals(more)
    calls = script_calls(get_client())
    depths = [(r.db, r.lists) for r in ranking._guesses.values()]
    want = expected((stored, {**pending, **more}, pks), "object", None)[:5]
    # The entries read by slug resolved (one query), then the slugs asked for (one).
    assert read() == (want, 2)
    assert script_calls(get_client()) - calls == 2  # two rounds, of the same depths
    assert [(r.db, r.lists) for r in ranking._guesses.values()] == depths
