"""What a live read takes from Redis in one script call, and its hold on new claims.

What a live read takes from Redis in one script call: the live totals or the per-day
lists, with the open claims and the claim sequence (live.py checks them against the
database); and the hold a read puts on new claims when they keep changing under it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django_pageviews.toplists import READ_BUDGET, member_bucket, split_name

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
    bounds: dict[str, tuple[int, str | None]]  # list name -> (views, member): see below
    views: dict[tuple[str, str], int]  # (list name, member) -> views, for those it has
    asked: dict[str, set[str]]  # list name -> members whose views it gave (0 if absent)
    claims: dict[str, dict[str, int]]
    seq: str
    work: int  # entries read and members looked up by the call


class ListsOverBudget(Exception):
    """SNAPSHOT_LISTS refused a read that could have taken more than its budget."""


def snapshot_lists(
    client: Any,
    prefix: str,
    first: str,
    last: str,
    c: int,
    ask: list[tuple[str, str]],
    budget: int = READ_BUDGET,
) -> ListsSnapshot:
    """The lists named ``prefix...`` of the days from ``first`` to ``last`` (ISO dates, ""
    for an open end): the first ``c`` entries of each of their sets, the views of the
    (kind, member) pairs of ``ask`` and (within ``budget``) of those entries, in each list
    of their kind; and the open claims. ListsOverBudget when that could take more than
    ``budget`` entries read and members looked up: nothing is read then.

    A list's top is the entries read, most viewed first (equal views in member order, as
    Redis orders them: by their UTF-8 bytes, Python's string order); its bound is (0,
    None) when every set was read to its end, else the most views of the last entry read
    of a set cut at ``c``, with the least member of those last entries that have as many:
    a member not read has at most that many views, and if as many, comes after it."""
    from .scripts import snapshot_lists as snapshot_script

    keys = Keys.current()
    args: list[Any] = [keys.prefix + "chunk:", prefix, first, last, c, budget]
    for kind, member in ask:
        args += (kind, member, member_bucket(kind, member))
    reply = snapshot_script(keys=[keys.top, keys.claims, keys.seq], args=args, client=client)
    if reply[0] == "over":
        raise ListsOverBudget(f"a live list read needs {reply[1]} > {budget} steps in Redis")
    names, tops, scores, cross, claim_ids, chunks, seq, work = reply
    by_kind: dict[str, list[str]] = {}  # the members asked, in the order the script keeps
    for kind, member in ask:
        by_kind.setdefault(kind, []).append(member)
    views: dict[tuple[str, str], int] = {}
    asked: dict[str, set[str]] = {}
    for name, got, more in zip(names, scores, cross, strict=True):
        wanted = by_kind.get(split_name(name)[0], [])
        asked[name] = {*wanted, *more[::2]}
        for member, score in [
            *zip(wanted, got, strict=True),
            *zip(more[::2], more[1::2], strict=True),
        ]:
            if score is not None:
                views[(name, member)] = -int(float(score))
    snap = ListsSnapshot({}, {}, views, asked, _claims(claim_ids, chunks), seq, int(work))
    for name, sets in zip(names, tops, strict=True):
        entries, cut = [], []
        for part in sets:
            read = [(part[i], -int(float(part[i + 1]))) for i in range(0, len(part), 2)]
            entries += read
            if len(read) == c:
                cut.append(read[-1])
        entries.sort(key=lambda entry: (-entry[1], entry[0]))
        snap.tops[name] = entries
        # The members read have their views in the list: the script did not ask again.
        asked.setdefault(name, set()).update(member for member, _ in entries)
        views.update(((name, member), n) for member, n in entries)
        most = max((n for _, n in cut), default=0)
        snap.bounds[name] = (most, min((m for m, n in cut if n == most), default=None))
    return snap


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
