"""write_batch keeps the claim mark it is given (redis/restore.py compares the database's
highest mark with Redis's claim sequence): it was dropped on the way to write_once."""

from __future__ import annotations

import pytest

from django_pageviews.models import ProcessedBatch
from django_pageviews.storage import write_batch
from tests.test_storage import PAGE, event

pytestmark = pytest.mark.django_db(transaction=True)


def test_write_batch_keeps_the_claim_mark() -> None:
    assert write_batch("marked", [event(PAGE)], claim_mark=("epoch-a", 42)) == 1
    row = ProcessedBatch.objects.get(batch_id="marked")
    assert (row.redis_epoch, row.redis_seq) == ("epoch-a", 42)
