"""Live totals and per-day lists left in Redis by the version before decision 28 (every
total by its full name in one hash, each day's list in one sorted set), written by that
version's own SHIP script (below, verbatim): after an upgrade the current scripts read them
exactly, add to them and drain them to nothing; and the new layout stays in Redis's compact
encodings without any configuration. Real private Redis (7.x and 6.2), real database."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest
import redis
from redis.commands.core import Script

from django_pageviews.events import PK, PageViewEvent, Target, current_day
from django_pageviews.models import PageView
from django_pageviews.redis.buffer import Keys, Shipment
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis
from django_pageviews.redis.scripts import CHUNKED, ship
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.reports import get_popular_urls
from django_pageviews.toplists import LIST_BUCKETS, URL, list_name, member_bucket
from django_pageviews.wire import DIM_BUCKETS, TOTAL, count_field, dimension_slot, dimensions
from tests.models import Article
from tests.test_seams_restore_lists import (
    article_views,
    assert_nothing_left,
    check_reads,
    server,  # noqa: F401 (the fixture)
    url_views,
)
from tests.test_seams_restore_lists import ship as ship_now

pytestmark = pytest.mark.django_db(transaction=True)

OLD_SHIP = (
    CHUNKED
    + """
local US, RS = '\\31', '\\30'
local nf, nc = tonumber(ARGV[5]), tonumber(ARGV[6])
local dims, lists, listed = {}, {}, {}
local function add(t, k, n) t[k] = (t[k] or 0) + n end
local function add_list(name, member, n)
  lists[name] = lists[name] or {}
  add(lists[name], member, n)
  add(listed, name, n)
end
for i = 8, 6 + 2 * nf, 2 do
  local field, n = ARGV[i], tonumber(ARGV[i + 1])
  local p, start = {}, 1
  while true do
    local stop = string.find(field, US, start, true)
    if not stop then p[#p + 1] = string.sub(field, start) break end
    p[#p + 1] = string.sub(field, start, stop - 1)
    start = stop + 1
  end
  if #p == 6 and p[1] ~= 'skipped' then
    local day, url, view, model, fld, value = p[1], p[2], p[3], p[4], p[5], p[6]
    local u, v = 'u' .. url, 'v' .. view
    add(dims, 't', n); add(dims, u, n); add(dims, v, n); add(dims, u .. RS .. v, n)
    add_list('u|' .. day, url, n)
    if view ~= '' then add_list('v|' .. day, view, n) end
    if model ~= '' then
      local o = 'o' .. model .. US .. fld .. US .. value
      add(dims, o, n); add(dims, o .. RS .. u, n); add(dims, o .. RS .. v, n)
      add(dims, o .. RS .. u .. RS .. v, n)
      add_list('o|' .. model .. '|' .. fld .. '|' .. day, value, n)
    end
  end
end
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then return {-1, 0} end
local i = 8
for _ = 1, nf do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nc do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
for dim, n in pairs(dims) do redis.call('HINCRBY', KEYS[2], dim, n) end
for name, members in pairs(lists) do
  for member, n in pairs(members) do
    redis.call('ZINCRBY', KEYS[9] .. ':' .. name, -n, member)
  end
end
for name, n in pairs(listed) do redis.call('ZINCRBY', KEYS[9], n, name) end
if i <= #ARGV then chunked('RPUSH', KEYS[3], ARGV, i, #ARGV) end
if nf > 0 then redis.call('SET', KEYS[5], ARGV[2], 'NX') end
redis.call('SET', KEYS[8], ARGV[7], 'NX')
local total = tonumber(redis.call('HGET', KEYS[2], 't') or '0')
local threshold = tonumber(ARGV[3])
local early = 0
if threshold > 0 and total >= threshold then
  if redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[4]) then early = 1 end
end
return {total, early}
"""
)


def ship_before(targets: list[Target]) -> None:
    """Ship views as the version before decision 28 did (same arguments, its script)."""
    now = time.time()
    events = [PageViewEvent(uuid.uuid4().hex, now, t, None, "", "") for t in targets]
    keys, args = build_shipment(events, Counter()).script_args()
    Script(get_client(), OLD_SHIP.encode())(keys=keys, args=args)


def test_totals_and_lists_of_the_earlier_layout_are_read_added_to_and_drained(
    server: Any,  # noqa: F811
) -> None:
    client = get_client()
    keys = Keys.current()
    articles = {s: Article.objects.create(title=s, slug=s) for s in ("old", "new")}
    truth: Counter[str] = Counter()
    before = [*url_views("/old/", 4), *url_views("/shared/", 3), *article_views(articles["old"], 5)]
    ship_before(before)
    truth.update(t.url for t in before)
    urls = f"{keys.top}:{list_name(URL, current_day())}"
    assert client.hlen(keys.dims) > 1 and client.exists(urls)  # the earlier layout
    check_reads(truth, articles)

    after = [*url_views("/shared/", 2), *url_views("/new/", 3)]
    after += [*article_views(articles["old"], 2), *article_views(articles["new"], 1)]
    ship_now(after)
    truth.update(t.url for t in after)
    # A member of the earlier list stays there; a new one goes to its own set.
    assert client.zscore(urls, "/shared/") == -5
    assert client.zscore(urls, "/new/") is None
    assert client.zscore(f"{urls}:{member_bucket(URL, '/new/')}", "/new/") == -3
    check_reads(truth, articles)

    assert cleanup().replayed == 0
    drain_redis(time_budget=None)
    check_reads(truth, articles)
    assert PageView.get_view_count() == sum(truth.values()) == 20
    assert_nothing_left(client)


def test_the_layout_stays_compact_and_the_scripts_agree_with_python(
    server: Any,  # noqa: F811
) -> None:
    """4,000 distinct pages, each with its own object and URL: every live-total hash and
    list set stays in the compact encoding of Redis's defaults (listpack on 7, ziplist on
    6.2), and each total is where ``dimension_slot`` says."""
    day = current_day()
    targets = [Target(f"/p/{i}-é/", "page", "tests.article", PK, str(i)) for i in range(4000)]
    counts = Counter({count_field(day, t): 1 + i % 3 for i, t in enumerate(targets)})
    for first in range(0, len(targets), 100):
        part = Counter(dict(list(counts.items())[first : first + 100]))
        shipment_keys, args = Shipment(part, [], []).script_args()
        ship(keys=shipment_keys, args=args, client=get_client())
    keys = Keys.current()
    raw = redis.Redis.from_url(server.url)
    try:
        buckets = list(raw.scan_iter(match=keys.dims.encode() + b":*", count=1000))
        assert 0 < len(buckets) <= DIM_BUCKETS
        sets = list(raw.scan_iter(match=keys.top.encode() + b":*:*", count=1000))
        assert 0 < len(sets) <= 3 * LIST_BUCKETS  # URLs, view names, objects
        for key in buckets + sets:
            assert raw.object("encoding", key) in (b"listpack", b"ziplist"), key
        assert int(raw.hget(keys.dims, TOTAL) or 0) == sum(counts.values())
        for i in (0, 1, 2, 3999):
            for name in dimensions(targets[i])[1:]:
                bucket, field = dimension_slot(name)
                expected = 1 + i % 3 if name != "vpage" else sum(counts.values())
                assert int(raw.hget(f"{keys.dims}:{bucket}", field) or 0) == expected, name
    finally:
        raw.close()


def test_a_lists_top_merges_its_sets_as_one_sorted_set_would_order_it(
    server: Any,  # noqa: F811
) -> None:
    """Ties across sets in byte order (upper case before lower, ASCII before accents: not a
    locale's order), and sets read a few entries at a time: 300 URLs with 1-3 views each,
    the top 50 (about 4 read from each of 64 sets, then more from the sets that hold more
    of the top)."""
    names = [f"/{c}{i}/" for i, c in enumerate("aBéZ_9" * 50)]
    views = Counter({url: 1 + i % 3 for i, url in enumerate(names)})
    ship_now([t for url, n in views.items() for t in url_views(url, n)])
    expected = sorted(views.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    assert get_popular_urls(limit=50) == expected[:50]
    assert get_popular_urls(limit=3, days=1) == expected[:3]
