"""Live reads while a claimed batch is split (issue #10, items 3 and 8 together).

redis/splitting.py records ``<id>`` in the database before it writes any part of a refused
batch; live.py takes a claim whose id the database has as written in full. Until cleanup
finishes such a claim (BUFFER_TIMEOUT later, or after an outage), the views of its parts
not yet written are in neither source. Real Redis and database; the flusher dies after
its first part (as under SIGKILL: nothing after that point runs)."""

from __future__ import annotations

from typing import Any

import pytest

from django_pageviews import storage
from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
from django_pageviews.redis.buffer import status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis
from tests.test_drain_faults import (
    POISON,
    Crash,
    daily,
    invalid,
    poison_rollup,  # noqa: F401 (a fixture)
    send_views,
    total,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("poison_rollup")
def test_a_live_read_mid_split_counts_the_parts_not_yet_written(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = send_views(good_pages=9, poison=2)

    def dies_after_a_part(batch_id: str, *args: Any, **kwargs: Any) -> int | None:
        written = storage.write_once(batch_id, *args, **kwargs)
        if "." in batch_id:
            raise Crash
        return written

    with monkeypatch.context() as m:
        m.setattr("django_pageviews.redis.splitting.write_once", dies_after_a_part)
        with pytest.raises(Crash):
            drain_redis(time_budget=None)
    assert status(get_client())["claimed_batches"] == 1
    splits = ProcessedBatch.objects.filter(batch_id__endswith="~split")
    assert splits.exclude(batch_id__contains=".").count() == 1
    assert 0 < total() < good  # one part written
    # Not yet acknowledged: every view counts, once (the poison ones too, until counted
    # as invalid).
    assert PageView.get_view_count() == good + 2
    assert PageView.get_view_count(url=POISON) == 2
    assert PageView.get_view_count(url="/pages/8/") == 3
    assert PageView.get_view_count(url="/pages/0/") == 3
    assert sum(n for _, n in PageView.get_popular_urls(limit=20)) == good + 2
    cleanup(stale_after=0)
    assert (total(), invalid(), daily(POISON)) == (good, 2, 0)
    assert PageView.get_view_count() == good
    assert PageView.get_view_count(url=POISON) == 0
    assert PageViewDaily.objects.filter(url="/pages/8/").count() == 1
