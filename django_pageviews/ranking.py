"""Exact most-viewed lists that read only the top of each list: the threshold algorithm.

A key's total (a URL's, a view name's, an object's) is its database total plus its views
in each per-day list of Redis (toplists.py) plus this process's. Each round reads, in one
consistent live read, the first ``k`` entries of every list, the database's first ``M``
keys by total, and every component of the keys so found. A key seen nowhere has at most
the ``k``-th value of each list that has more than ``k`` entries, plus the database's
``M``-th: the threshold. Once the ``limit``-th best known total is above it, no unseen key
can rank: the list is exact. Otherwise the round is repeated four times as deep. The work
depends on how far down the lists the answer lies, not on how much is pending.

Equal totals rank by key. An unseen key can equal the threshold only by sitting below the
``k``-th entry of every list with more than ``k`` entries, and a list's entries with equal
views are in member order: where members are the keys themselves, the unseen key comes
after that entry, and after the ``limit``-th known key if that one comes before it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date

from django.db.models import Model

from . import live
from .conf import conf
from .events import PK, Target
from .objects import lookup_values_of, model_label
from .storage import resolve_targets
from .stored_tops import StoredTop
from .toplists import SEP, URL, VIEW, PendingLists, kinds, object_kind, split_name

FIRST_DEPTH = 16
Pair = tuple[str, str]  # (kind, member)


@dataclass
class KeySpace:
    """How the keys of one ranking are named in the lists."""

    prefix: str  # the names of its lists start with it
    members_for: Callable[[set[str]], dict[str, list[Pair]]]  # keys
    resolve: Callable[[set[Pair]], dict[Pair, str | None]]  # members to keys
    identity: Callable[[str], bool]  # kind -> its members are the keys themselves


def _same(pairs: set[Pair]) -> dict[Pair, str | None]:
    return {pair: pair[1] for pair in pairs}


def urls() -> KeySpace:
    return KeySpace(URL + SEP, lambda keys: {k: [(URL, k)] for k in keys}, _same, lambda _: True)


def view_names() -> KeySpace:
    return KeySpace(
        VIEW + SEP, lambda keys: {k: [(VIEW, k)] for k in keys if k}, _same, lambda _: True
    )


def objects(model: type[Model]) -> KeySpace:
    """Objects ranked by primary key, named in the lists by pk or by a slug."""
    label = model_label(model)
    pk_kind = object_kind(label, PK)

    def members_for(pks: set[str]) -> dict[str, list[Pair]]:
        found = lookup_values_of(model, pks)
        return {
            pk: [(object_kind(label, f), v) for f, v in found[pk]]
            if pk in found
            else [(pk_kind, pk)]
            for pk in pks
        }

    def resolve(pairs: set[Pair]) -> dict[Pair, str | None]:
        targets = {
            pair: Target("", "", label, pair[0].rsplit(SEP, 1)[1], pair[1]) for pair in pairs
        }
        resolved = resolve_targets(set(targets.values()))
        return {pair: resolved[t][1] or None for pair, t in targets.items()}

    return KeySpace(f"o{SEP}{label}{SEP}", members_for, resolve, lambda kind: kind == pk_kind)


@dataclass
class _Db:
    ranked: list[str]  # the database's first keys at the depth read (stored_tops.py)
    bound: int  # the database's total of any other key is at most this
    tie_key: str | None  # and, if equal to it, comes after this key (None: unknown)
    totals: dict[str, int]  # of those and of every key the lists named
    resolved: dict[Pair, str | None]


def top(
    stored: StoredTop,
    space: KeySpace,
    limit: int,
    first: date | None,
    last: date | None,
) -> list[tuple[str, int]]:
    """The ``limit`` largest totals of ``stored`` keys plus pending views, exactly, most
    viewed first (equal totals by key)."""
    depth = max(2 * limit, FIRST_DEPTH)
    guess: set[str] = set()
    remembered = _guesses.get(stored.identity(limit))
    while True:
        if conf.ASYNC_PROCESSING:
            # The database's own top, for Redis to give their pending views: the keys the
            # same list needed last time (a guess: any key missing costs one more round),
            # else read beforehand.
            if remembered is not None:
                guess |= remembered
                remembered = None
            else:
                guess |= stored.keys(depth)
        done, more, deeper = _round(stored, space, limit, first, last, depth, guess)
        if done is not None:
            if conf.ASYNC_PROCESSING:
                _remember(stored.identity(limit), guess)
            return done
        if deeper or more <= guess:
            depth *= 4
        guess |= more


# The keys asked for by the last successful read of each list (up to GUESSES lists): a
# list shown on every page is read with one database statement less. Only a guess.
GUESSES = 256
_guesses: dict[Hashable, frozenset[str]] = {}
_guesses_lock = threading.Lock()  # a server's threads read lists at the same time


def _remember(identity: Hashable, keys: set[str]) -> None:
    with _guesses_lock:
        if len(_guesses) >= GUESSES and identity not in _guesses:
            del _guesses[next(iter(_guesses))]  # the oldest
        _guesses[identity] = frozenset(keys)


def _round(
    stored: StoredTop,
    space: KeySpace,
    limit: int,
    first: date | None,
    last: date | None,
    k: int,
    guess: set[str],
) -> tuple[list[tuple[str, int]] | None, set[str], bool]:
    """The ranking if this depth proves it; else the keys to ask about next time, and
    whether to read deeper (or only ask about keys whose pending views were not read)."""
    members = space.members_for(guess)
    ask = [pair for pairs in members.values() for pair in pairs]

    def db_read(pending: PendingLists) -> _Db:
        pairs = {(split_name(n)[0], m) for n in pending.names() for m, _ in pending.top(n)}
        pairs |= set(_local_pairs(pending, space, first, last))
        resolved = space.resolve(pairs)
        candidates = {key for key in resolved.values() if key} | guess
        # The head's keys at depth k were read into ``guess`` (at that depth) just
        # before, so their pending views were asked for: one round is the common case.
        head = stored.head(k, candidates)
        return _Db(head.keys, head.bound, head.tie_key, head.totals, resolved)

    db, pending = live.read_lists(space.prefix, first, last, k, ask, db_read)
    names = pending.names()
    known: dict[str, dict[str, str]] = {key: dict(pairs) for key, pairs in members.items()}
    for (kind, member), key in db.resolved.items():
        if key:
            known.setdefault(key, {})[kind] = member
    local: Counter[str] = Counter()
    for (kind, member), n in _local_pairs(pending, space, first, last).items():
        if key := db.resolved.get((kind, member)):
            local[key] += n
    exhausted = {n for n in names if len(pending.top(n)) < k}
    bound = {n: 0 if n in exhausted else pending.top(n)[-1][1] for n in names}
    db_bound = db.bound

    totals: dict[str, int] = {}
    ceilings: dict[str, int] = {}  # keys with components not read: their highest total
    for key in set(db.totals) | set(known) | set(local):
        total, unread = db.totals.get(key, 0) + local[key], 0
        for name in names:
            kind = split_name(name)[0]
            named = key if space.identity(kind) else known.get(key, {}).get(kind)
            views = pending.views(name, named) if named is not None else None
            if views is None:
                unread += bound[name]
            else:
                total += views
        if unread:
            ceilings[key] = total + unread
        else:
            totals[key] = total
    ranked = sorted(((k_, n) for k_, n in totals.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))
    more = set(ceilings) | set(db.ranked)
    if len(ranked) < limit:
        if not ceilings and len(exhausted) == len(names) and db_bound == 0:
            return ranked, set(), False
        return None, more, True
    last_key, last_total = ranked[limit - 1]
    threshold = db_bound + sum(bound.values())
    beyond = last_total > threshold or (
        last_total == threshold
        and (
            (len(exhausted) == len(names) and (db.tie_key is not None and last_key <= db.tie_key))
            or any(
                space.identity(split_name(n)[0]) and last_key <= pending.top(n)[-1][0]
                for n in names
                if n not in exhausted
            )
        )
    )
    if any(c >= last_total for c in ceilings.values()):
        return None, more, not beyond
    return (ranked[:limit], set(), False) if beyond else (None, more, True)


def _local_pairs(
    pending: PendingLists, space: KeySpace, first: date | None, last: date | None
) -> Counter[Pair]:
    """This process's pending views in range, by (kind, member) of the space's lists."""
    pairs: Counter[Pair] = Counter()
    for (day, target), n in pending.local.items():
        if (first is None or day >= first) and (last is None or day <= last):
            for kind, member in kinds(target):
                if (kind + SEP).startswith(space.prefix):
                    pairs[(kind, member)] += n
    return pairs
