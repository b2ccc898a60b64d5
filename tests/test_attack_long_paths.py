"""A path the database cannot index must not stop the writer (found attacking the merge
of issue #10).

PostgreSQL cannot index a text over about 2700 bytes; 700 characters (the URL cap) of
four-byte characters (emoji) are 2800. Any site with a catch-all page answers such a
path with 200; the database then refused the batch with "index row size exceeds btree
maximum", which reaches Django as OperationalError and was taken for an outage: the
batch was retried first, forever, and every later view waited behind it (dropped once
the buffer was full; on the Redis path the drain wrote nothing more). Now the URL is cut
to fit (``events.URL_MAX_BYTES``), and a "program limit exceeded" error is the data's
fault (``db_errors.py``): isolated, never waited out.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.models import Sum

from django_pageviews import stats
from django_pageviews.buffer import MAX_ATTEMPTS, buffer
from django_pageviews.events import URL_MAX_BYTES, stored_url
from django_pageviews.models import PageView, PageViewDaily, SkippedDaily
from django_pageviews.recorder import flush
from django_pageviews.redis.drain import drain_redis
from tests.conftest import asgi_requests, distinct_visitors
from tests.db_faults import TRIGGER, allow_all

pytestmark = pytest.mark.django_db(transaction=True)

EMOJI = random.Random(10)
# 690 random emoji (no compression helps the index), under the catch-all ^long/ page.
EMOJI_PATH = "/long/" + "".join(chr(EMOJI.randint(0x1F300, 0x1FAFF)) for _ in range(690))


def total() -> int:
    return PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0


def test_a_path_of_emoji_is_counted_beside_the_good_views(pipeline: str) -> None:
    visitors = distinct_visitors(4)
    requests = [("GET", "/plain/", h) for h in visitors]
    requests += [("GET", EMOJI_PATH, h) for h in visitors[:2]]
    assert {r.status_code for r in asgi_requests(requests)} == {200}
    if pipeline == "redis":
        assert drain_redis(time_budget=None).failed == 0
    flush()
    assert buffer.last_error is None, buffer.last_error
    assert buffer.pending_count() == 0
    url = stored_url(EMOJI_PATH)
    assert len(url.encode()) <= URL_MAX_BYTES < len(EMOJI_PATH.encode())
    assert list(PageViewDaily.objects.filter(url=url).values_list("views", flat=True)) == [2]
    assert PageView.get_view_count(url=EMOJI_PATH) == 2
    assert total() == 6
    assert PageView.objects.count() == 6


@pytest.fixture
def index_limit_on_poison() -> Iterator[str]:
    """PostgreSQL refuses one page's daily row with SQLSTATE 54000, as it refuses a row
    its index cannot hold."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLSTATE class 54 is PostgreSQL's")
    url = "/long/poison/"
    table = connection.ops.quote_name(PageViewDaily._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION {TRIGGER}() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.url = '{url}' THEN RAISE EXCEPTION 'index row size exceeds maximum' "
            "USING ERRCODE = '54000'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
        )
    try:
        yield url
    finally:
        allow_all(PageViewDaily)


def test_a_program_limit_error_is_isolated_not_waited_out(index_limit_on_poison: str) -> None:
    visitors = distinct_visitors(3)
    requests = [("GET", "/plain/", h) for h in visitors]
    requests += [("GET", index_limit_on_poison, visitors[0])]
    assert {r.status_code for r in asgi_requests(requests)} == {200}
    before = stats.snapshot().get(stats.SKIP_INVALID, 0)
    for _ in range(2 * MAX_ATTEMPTS + 1):  # the batch, then its poison view alone
        flush()
    assert buffer.pending_count() == 0, buffer.last_error
    assert stats.snapshot().get(stats.SKIP_INVALID, 0) - before == 1
    assert total() == 3
    invalid = SkippedDaily.objects.filter(reason=stats.SKIP_INVALID)
    assert invalid.aggregate(n=Sum("requests"))["n"] == 1
