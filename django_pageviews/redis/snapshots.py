"""What a live read takes from Redis in one script call, and its hold on new claims.

What a live read takes from Redis in one script call: the live totals or the per-day
lists, with the open claims and the claim sequence (live.py checks them against the
database); and the hold a read puts on new claims when they keep changing under it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .buffer import HOLD_MS, HOLD_SUFFIX, Keys


@dataclass
class Snapshot:
    values: dict[str, int]  # dimension (or count field) -> views
    claims: dict[str, dict[str, int]]  # open claims: batch id -> count field -> views
    seq: str


def snapshot(client: Any, dims: list[str]) -> Snapshot:
    """Live totals of ``dims`` (views not yet acknowledged) and the open claims."""
    from .scripts import snapshot as snapshot_script

    keys = Keys.current()
    values, claim_ids, chunks, seq = snapshot_script(
        keys=[keys.dims, keys.claims, keys.seq],
        args=[keys.prefix + "chunk:", *dims],
        client=client,
    )
    values = {d: int(v) for d, v in zip(dims, values, strict=True) if v is not None}
    return Snapshot(values, _claims(claim_ids, chunks), seq)


@dataclass
class ListsSnapshot:
    """What SNAPSHOT_LISTS saw: per list, its top entries and the members asked about."""

    tops: dict[str, list[tuple[str, int]]]  # list name -> [(member, views)], most first
    views: dict[tuple[str, str], int]  # (list name, member) -> views, for those it has
    asked: dict[str, set[str]]  # list name -> members whose views it gave (0 if absent)
    claims: dict[str, dict[str, int]]
    seq: str


def snapshot_lists(
    client: Any, prefix: str, first: str, last: str, k: int, ask: list[tuple[str, str]]
) -> ListsSnapshot:
    """The lists named ``prefix...`` of the days from ``first`` to ``last`` (ISO dates, ""
    for an open end): their first ``k`` entries and the views of the (kind, member) pairs
    of ``ask`` and of those entries, in each list of their kind; and the open claims."""
    from .scripts import snapshot_lists as snapshot_script

    keys = Keys.current()
    args: list[Any] = [keys.prefix + "chunk:", prefix, first, last, k]
    for kind, member in ask:
        args += (kind, member)
    names, tops, members, scores, claim_ids, chunks, seq = snapshot_script(
        keys=[keys.top, keys.claims, keys.seq], args=args, client=client
    )
    views: dict[tuple[str, str], int] = {}
    asked: dict[str, set[str]] = {}
    for name, wanted, got in zip(names, members, scores, strict=True):
        asked[name] = set(wanted)
        for member, score in zip(wanted, got, strict=True):
            if score is not None:
                views[(name, member)] = -int(float(score))
    return ListsSnapshot(
        {
            name: [(top[i], -int(float(top[i + 1]))) for i in range(0, len(top), 2)]
            for name, top in zip(names, tops, strict=True)
        },
        views,
        asked,
        _claims(claim_ids, chunks),
        seq,
    )


def _pairs(flat: list[str]) -> dict[str, int]:
    return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}


def _claims(claim_ids: list[str], chunks: list[list[str]]) -> dict[str, dict[str, int]]:
    return {batch_id: _pairs(flat) for batch_id, flat in zip(claim_ids, chunks, strict=True)}


@contextmanager
def hold_claims(client: Any) -> Iterator[None]:
    """Hold new claims off (CLAIM waits) for the block, or at most HOLD_MS."""
    from .scripts import hold, release

    key = Keys.current().seq + HOLD_SUFFIX
    hold(keys=[key], args=[HOLD_MS], client=client)
    try:
        yield
    finally:
        release(keys=[key], client=client)


def claim_sequence(client: Any) -> str:
    seq: str | None = client.get(Keys.current().seq)
    return seq or "0"
