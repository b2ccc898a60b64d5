"""Claims written together (PAGEVIEW_DRAIN_TRANSACTION_SIZE): one transaction for several
claims, each under its own batch id, acknowledged after the commit. Exactly once when the
flusher stops inside that transaction or between its commit and the acknowledgements
(raised here, and a real SIGKILL), when the database refuses a record of the group, and
through an outage. Real Redis, real database; the functions wrapped here still run."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import override_settings

from django_pageviews import storage, upsert
from django_pageviews.events import PageViewEvent, Target
from django_pageviews.models import PageView, ProcessedBatch
from django_pageviews.redis import aside as redis_aside
from django_pageviews.redis import buffer as redis_buffer
from django_pageviews.redis import drain
from django_pageviews.redis.buffer import status
from django_pageviews.redis.client import get_client
from django_pageviews.redis.drain import cleanup, drain_redis
from django_pageviews.redis.scripts import ship
from django_pageviews.redis.shipping import build_shipment
from django_pageviews.storage import Contents
from tests.db_faults import allow_all, read_only, refuse_url
from tests.processes import running, subprocess_env, wait_for
from tests.test_drain_faults import Crash, lock_waits, total
from tests.test_storage import event

pytestmark = pytest.mark.django_db(transaction=True)

# Claims of 5 raw events, 3 claims (15 records) per transaction.
SMALL = {"PAGEVIEW_BATCH_SIZE": 5, "PAGEVIEW_DRAIN_TRANSACTION_SIZE": 15}
# Few pages: their count fields (which carry the daily totals) all go with the first
# claim, and the groups after it hold raw events only.
PAGES = 3
POISON = "/poison/"


def page(n: int) -> Target:
    return Target(f"/g/{n}/", "page", "", "", "")


def ship_events(events: Sequence[PageViewEvent]) -> None:
    """One view per shipment: one raw-event element per view, so that claims of
    PAGEVIEW_BATCH_SIZE elements hold as many views."""
    client = get_client()
    for start in range(len(events)):
        keys, args = build_shipment(events[start : start + 1], Counter()).script_args()
        ship(keys=keys, args=args, client=client)


def ship_views(n: int) -> list[PageViewEvent]:
    events = [event(page(i % PAGES)) for i in range(n)]
    ship_events(events)
    return events


def open_claims() -> int:
    return int(status(get_client())["claimed_batches"])


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of claims of each group written together (observed, still written)."""
    sizes: list[int] = []
    write_group = storage.write_group

    def observed(batches: Sequence[Contents]) -> list[int]:
        sizes.append(len(batches))
        return write_group(batches)

    monkeypatch.setattr(drain, "write_group", observed)
    return sizes


@override_settings(**SMALL)
def test_a_backlog_is_written_in_groups_of_whole_claims(redis_url: str, groups: list[int]) -> None:
    ship_views(40)  # 8 claims: the first alone, then 3, 3, and the last alone
    result = drain_redis(time_budget=None)
    assert (result.views, result.batches, result.failed) == (40, 8, 0)
    assert groups == [3, 3]
    assert (total(), PageView.objects.count(), ProcessedBatch.objects.count()) == (40, 40, 8)
    assert open_claims() == 0


@override_settings(PAGEVIEW_BATCH_SIZE=5, PAGEVIEW_DRAIN_TRANSACTION_SIZE=0)
def test_a_transaction_size_of_zero_writes_each_claim_alone(
    redis_url: str, groups: list[int]
) -> None:
    ship_views(20)
    assert drain_redis(time_budget=None).views == 20
    assert groups == []
    assert (total(), ProcessedBatch.objects.count()) == (20, 4)


@override_settings(**SMALL)
def test_the_same_event_in_two_claims_of_a_group_counts_once(
    redis_url: str, groups: list[int]
) -> None:
    events = ship_views(10)
    ship_events(events[5:6])  # shipped again (a retry not recognised): in the third claim
    ship_views(9)
    result = drain_redis(time_budget=None)
    assert groups == [3]
    assert result.failed == 0
    assert (total(), PageView.objects.count()) == (19, 19)


@override_settings(**SMALL)
def test_stopped_between_the_commit_and_the_acknowledgements(
    redis_url: str, groups: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ship_views(40)
    acks = 0
    ack = redis_buffer.ack

    def dies_at_the_acknowledgements_of_the_group(client: Any, claim: Any) -> bool:
        nonlocal acks
        acks += 1
        if acks == 3:  # the first claim's went through; the group's are being sent
            raise Crash
        return ack(client, claim)

    monkeypatch.setattr(drain, "ack", dies_at_the_acknowledgements_of_the_group)
    with pytest.raises(Crash):
        drain_redis(time_budget=None)
    monkeypatch.setattr(drain, "ack", ack)
    assert (PageView.objects.count(), ProcessedBatch.objects.count(), open_claims()) == (20, 4, 3)
    result = cleanup(stale_after=0)  # the group's claims: committed, not acknowledged
    assert (result.acknowledged, result.replayed, result.failed) == (3, 0, 0)
    assert PageView.objects.count() == 20
    assert drain_redis(time_budget=None).batches == 4
    assert (total(), PageView.objects.count(), open_claims()) == (40, 40, 0)


@override_settings(**SMALL)
def test_stopped_inside_the_group_transaction(
    redis_url: str, groups: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ship_views(40)
    upsert_skipped = upsert.upsert_skipped
    calls = 0

    def dies_in_the_group(rows: Any, using: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the group's raw rows and daily totals, before its commit
            raise Crash
        upsert_skipped(rows, using)

    monkeypatch.setattr(storage, "upsert_skipped", dies_in_the_group)
    with pytest.raises(Crash):
        drain_redis(time_budget=None)
    monkeypatch.setattr(storage, "upsert_skipped", upsert_skipped)
    # Nothing of the group: not its ids, nor its raw rows.
    assert (PageView.objects.count(), ProcessedBatch.objects.count(), open_claims()) == (5, 1, 3)
    result = cleanup(stale_after=0)
    assert (result.acknowledged, result.replayed, result.failed) == (0, 3, 0)
    assert PageView.objects.count() == 20
    assert drain_redis(time_budget=None).batches == 4
    assert (total(), PageView.objects.count(), open_claims()) == (40, 40, 0)


@override_settings(**SMALL)
def test_a_record_refused_in_a_group_is_isolated_as_in_a_claim_alone(
    redis_url: str, groups: list[int]
) -> None:
    refuse_url(PageView, POISON)  # its raw row is refused; its view still counts
    try:
        ship_views(20)  # the first claim, then a group of 3
        ship_events([event(Target(POISON, "", "", "", ""))])
        ship_views(14)  # a group of 3 with the poison record, then the last claim
        result = drain_redis(time_budget=None)
    finally:
        allow_all(PageView)
    assert groups == [3, 3]
    assert (result.views, result.failed, open_claims()) == (35, 0, 0)
    assert (total(), PageView.objects.count()) == (35, 34)
    assert redis_aside.aside_status(get_client())["raw_events"] == 1


@override_settings(**SMALL)
def test_an_outage_during_a_group_keeps_its_claims_and_claims_nothing_more(
    redis_url: str, groups: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ship_views(40)
    write_claim = drain.write_claim
    outage: list[Any] = []

    def outage_after_the_first(*args: Any, **kwargs: Any) -> int:
        written = write_claim(*args, **kwargs)
        if not outage:  # the database becomes read-only once the first claim is written
            outage.append(read_only())
            outage[0].__enter__()
        return written

    monkeypatch.setattr(drain, "write_claim", outage_after_the_first)
    try:
        result = drain_redis(time_budget=None)
        assert (result.batches, result.views, result.failed) == (1, 40, 1)
        assert (PageView.objects.count(), open_claims()) == (5, 3)
        result = drain_redis(time_budget=None)  # the next drain, the database still down
        assert (result.batches, result.failed) == (0, 1)
        assert open_claims() == 3
    finally:
        outage[0].__exit__(None, None, None)
    result = drain_redis(time_budget=None)
    assert (result.batches, result.failed) == (7, 0)
    assert (total(), PageView.objects.count(), open_claims()) == (40, 40, 0)


@pytest.fixture
def held_event_id() -> Iterator[Any]:
    """Another transaction, which holds a raw row's event id (not committed)."""
    blocker = connections.create_connection(DEFAULT_DB_ALIAS)
    blocker.set_autocommit(False)
    try:
        yield blocker
    finally:
        blocker.rollback()
        blocker.close()


@pytest.mark.skipif(connection.vendor == "sqlite", reason="holding one row locked needs row locks")
@override_settings(**SMALL)
def test_a_flusher_killed_between_the_commit_and_the_acknowledgements(
    redis_url: str, held_event_id: Any, tmp_path: Path
) -> None:
    """A real flusher process: its group waits for an event id that another transaction
    holds; Redis is paused for writes meanwhile, so that once the group commits, its
    acknowledgement waits; the flusher is SIGKILLed there."""
    events = ship_views(40)
    table = connection.ops.quote_name(PageView._meta.db_table)
    with held_event_id.cursor() as cursor:  # the first group's first event (the 6th)
        cursor.execute(
            f"INSERT INTO {table} (url, timestamp, event_id, visitor_hash) VALUES (%s, %s, %s, %s)",
            ["/held/", "2000-01-01 00:00:00", events[5].event_id, ""],
        )
    client = get_client()
    log = tmp_path / "flusher.log"
    settings = {name: str(value) for name, value in SMALL.items()}
    env = subprocess_env(redis_url, PAGEVIEW_REDIS_SOCKET_TIMEOUT="60", **settings)
    with running([sys.executable, "-m", "django", "pageviews_flush"], env, log) as process:
        wait_for(lambda: lock_waits() > 0, "the group to wait", explain=log.read_text)
        client.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
        try:
            held_event_id.rollback()  # the group goes on, commits, and waits on Redis
            wait_for(lambda: ProcessedBatch.objects.count() == 4, "the group's commit")
            process.kill()
            process.wait()
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
    # Committed: the first claim (acknowledged) and the group (not acknowledged).
    assert (PageView.objects.count(), open_claims()) == (20, 3)
    result = cleanup(stale_after=0)
    assert (result.acknowledged, result.replayed, result.failed) == (3, 0, 0)
    assert drain_redis(time_budget=None).batches == 4
    assert (total(), PageView.objects.count(), open_claims()) == (40, 40, 0)
