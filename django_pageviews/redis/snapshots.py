"""What a live read takes from Redis, one script call per shard, and its hold on new claims.

What a live read takes from each shard of the buffer in one script call: the live totals
or the per-day lists, with the open claims and the claim sequence (live.py checks them
against the database); and the hold a read puts on new claims when they keep changing
under it. A view stays in the shard it was shipped to, and each batch is claimed from one
shard, so live.py's argument holds shard by shard: a snapshot of each (taken one after
the other) and one database read after all of them count every view once, checked with
every shard's claim sequence. Shard 0's call also reads the shard registry: a buffer of
one shard pays no round trip more, and one whose setting was lowered reads every shard
that may hold views (decision 42).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.cluster import RedisCluster

from django_pageviews.toplists import READ_BUDGET, member_bucket, shard_name, split_name

from .buffer import HOLD_MS, HOLD_SUFFIX, Keys, shard_count
from .scripts import hold, release
from .scripts import snapshot as snapshot_script
from .scripts import snapshot_lists as snapshot_lists_script

Claims = dict[str, dict[str, int]]  # open claims: batch id -> count field -> views


Marks = list[tuple[str, int]]  # (epoch, claim sequence) of each shard read


@dataclass
class Snapshot:
    values: dict[str, int]  # dimension (or count field) -> views
    claims: Claims  # of every shard read (batch ids are unique)
    seq: str  # the claim sequence of each shard read, joined
    shards: list[Keys] = field(default_factory=lambda: [Keys.current()])
    # Each shard's epoch and claim sequence, None when a shard has no epoch (nothing was
    # shipped to it since it was empty): what live.py asks the database about, in the
    # statement of its read, instead of reading the sequences again (decision 46).
    marks: Marks | None = None


def snapshot(client: Any, dims: list[str]) -> Snapshot:
    """Live totals of ``dims`` (views not yet acknowledged), the open claims and each
    shard's mark."""

    def call(keys: Keys, target: Any) -> Any:
        return snapshot_script(
            keys=[keys.dims, keys.claims, keys.seq, keys.registry, keys.epoch],
            args=[keys.prefix + "chunk:", *dims],
            client=target,
        )

    values: dict[str, int] = {}
    claims: Claims = {}
    seqs = []
    marks: Marks | None = []
    read = _each_shard(client, call, registry_at=4)
    for _keys, (found, claim_ids, chunks, seq, _registry, epoch) in read:
        for dim, value in zip(dims, found, strict=True):
            if value is not None:
                values[dim] = values.get(dim, 0) + int(value)
        if claim_ids:
            claims.update(_claims(claim_ids, chunks))
        seqs.append(seq)
        marks = None if epoch is None or marks is None else [*marks, (epoch, int(seq))]
    return Snapshot(values, claims, ",".join(seqs), [keys for keys, _ in read], marks)


@dataclass
class ListsSnapshot:
    """What SNAPSHOT_LISTS saw: per list, its top entries and the members asked about.
    Each shard's copy of a list is a list of its own (toplists.shard_name)."""

    tops: dict[str, list[tuple[str, int]]]  # list name -> [(member, views)], most first
    bounds: dict[str, tuple[int, str | None]]  # list name -> (views, member): see below
    views: dict[tuple[str, str], int]  # (list name, member) -> views, for those it has
    asked: dict[str, set[str]]  # list name -> members whose views it gave (0 if absent)
    claims: Claims
    seq: str
    work: int  # the most entries read and members looked up by one call (of one shard)
    shards: list[Keys] = field(default_factory=lambda: [Keys.current()])
    claim_shards: dict[str, int] = field(default_factory=dict)  # batch id -> its shard


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
    of their kind; and the open claims. One call per shard, each within ``budget``
    (decision 43), each shard's copy of a list a list of its own (toplists.shard_name).
    ListsOverBudget when a call could take more than ``budget`` entries read and members
    looked up: that call reads nothing, and the read is refused.

    A list's top is the entries read, most viewed first (equal views in member order, as
    Redis orders them: by their UTF-8 bytes, Python's string order); its bound is (0,
    None) when every set was read to its end, else the most views of the last entry read
    of a set cut at ``c``, with the least member of those last entries that have as many:
    a member not read has at most that many views, and if as many, comes after it."""
    asked_pairs: list[Any] = []
    by_kind: dict[str, list[str]] = {}  # the members asked, in the order the script keeps
    for kind, member in ask:
        asked_pairs += (kind, member, member_bucket(kind, member))
        by_kind.setdefault(kind, []).append(member)

    def call(keys: Keys, target: Any) -> Any:
        return snapshot_lists_script(
            keys=[keys.top, keys.claims, keys.seq, keys.registry],
            args=[keys.prefix + "chunk:", prefix, first, last, c, budget, *asked_pairs],
            client=target,
        )

    # The registry is the last element of each reply, a refusal's too.
    read = _each_shard(client, call, registry_at=-1)
    for _keys, reply in read:
        if reply[0] == "over":
            raise ListsOverBudget(f"a live list read needs {reply[1]} > {budget} steps in Redis")
    snap = ListsSnapshot({}, {}, {}, {}, {}, "", 0, [])
    seqs = []
    for keys, reply in read:
        names, tops, scores, cross, claim_ids, chunks, seq, work, _registry = reply
        for name, sets, got, more in zip(names, tops, scores, cross, strict=True):
            wanted = by_kind.get(split_name(name)[0], [])
            _add_list(snap, shard_name(keys.number, name), sets, c, wanted, got, more)
        claims = _claims(claim_ids, chunks)
        snap.claims.update(claims)
        snap.claim_shards.update(dict.fromkeys(claims, keys.number))
        snap.shards.append(keys)
        snap.work = max(snap.work, int(work))
        seqs.append(seq)
    snap.seq = ",".join(seqs)
    return snap


def _add_list(
    snap: ListsSnapshot,
    name: str,
    sets: list[list[str]],
    c: int,
    wanted: list[str],
    got: list[Any],
    more: list[Any],
) -> None:
    """One list of a call's reply into ``snap``: its sets' first ``c`` entries (merged,
    and its bound), the scores of the members ``wanted`` (``got``, in the order asked),
    and the (member, score) pairs of ``more`` (tops looked up in the list)."""
    snap.asked[name] = {*wanted, *more[::2]}
    for member, score in [*zip(wanted, got, strict=True), *zip(more[::2], more[1::2], strict=True)]:
        if score is not None:
            snap.views[(name, member)] = -int(float(score))
    entries, cut = [], []
    for part in sets:
        read = [(part[i], -int(float(part[i + 1]))) for i in range(0, len(part), 2)]
        entries += read
        if len(read) == c:
            cut.append(read[-1])
    entries.sort(key=lambda entry: (-entry[1], entry[0]))
    snap.tops[name] = entries
    # The members read have their views in the list: the script did not ask again.
    snap.asked[name].update(member for member, _ in entries)
    snap.views.update(((name, member), n) for member, n in entries)
    most = max((n for _, n in cut), default=0)
    snap.bounds[name] = (most, min((m for m, n in cut if n == most), default=None))


def _each_shard(
    client: Any, call: Callable[[Keys, Any], Any], registry_at: int
) -> list[tuple[Keys, Any]]:
    """``call`` on every shard: those of the setting in one round trip (one call each
    on a cluster, whose pipelines refuse scripts), then any more that shard 0's reply
    (its element ``registry_at``: the registry) names."""
    shards = [Keys.shard(n) for n in range(shard_count(None))]
    replies = _call_all(client, shards, call)
    more = [Keys.shard(n) for n in range(len(shards), shard_count(replies[0][registry_at]))]
    return list(zip(shards + more, replies + _call_all(client, more, call), strict=True))


def _call_all(client: Any, shards: Sequence[Keys], call: Callable[[Keys, Any], Any]) -> list[Any]:
    if len(shards) <= 1 or isinstance(client, RedisCluster):
        return [call(keys, client) for keys in shards]
    with client.pipeline(transaction=False) as pipe:
        for keys in shards:
            call(keys, pipe)
        replies: list[Any] = pipe.execute()
    return replies


def _pairs(flat: list[str]) -> dict[str, int]:
    return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}


def _claims(claim_ids: list[str], chunks: list[list[str]]) -> Claims:
    return {batch_id: _pairs(flat) for batch_id, flat in zip(claim_ids, chunks, strict=True)}


@contextmanager
def hold_claims(client: Any, shards: Sequence[Keys] | None = None) -> Iterator[None]:
    """Hold new claims of the shards read (shard 0 by default) off (CLAIM waits) for the
    block, or at most HOLD_MS."""
    names = [keys.seq + HOLD_SUFFIX for keys in shards or [Keys.current()]]
    held = []
    try:
        for key in names:
            hold(keys=[key], args=[HOLD_MS], client=client)
            held.append(key)
        yield
    finally:
        for key in held:
            release(keys=[key], client=client)


def claim_sequence(client: Any, shards: Sequence[Keys] | None = None) -> str:
    """The claim sequences of the shards read (shard 0 by default), as a snapshot joins
    them."""
    if shards is None or len(shards) == 1:
        seq: str | None = client.get((shards or [Keys.current()])[0].seq)
        return seq or "0"
    with client.pipeline(transaction=False) as pipe:
        for keys in shards:
            pipe.get(keys.seq)
        return ",".join(seq or "0" for seq in pipe.execute())
