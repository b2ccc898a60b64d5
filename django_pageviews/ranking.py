"""Exact most-viewed lists that read only the top of each list: the threshold algorithm.

A key's total (a URL's, a view name's, an object's) is its database total plus its views
in each per-day list of Redis (toplists.py) plus this process's. Each round reads, in one
consistent live read, the database's first ``M`` keys by total (of each day's list, for a
period), the first entries of each set of every list of Redis, and every component of the
keys so found. A key seen nowhere has at most each cut list's bound (the most views of a
set's last entry read) plus the database's ``M``-th total: the threshold. Once the
``limit``-th best known total is above it, no unseen key can rank: the list is exact.
Otherwise the larger part of the threshold is read deeper: the database (under flat
traffic: its many equal totals), or the lists. The work depends on how far down the
lists the answer lies, not on how much is pending, and no call to Redis does more than
READ_BUDGET steps (decision 43). The keys the lists name are resolved and summed in the
database only if they could reach the ``limit``-th of the database's first totals
(decision 44): the lists' first entries name many keys with a few views each. A buffer
in shards (decision 42) is read with one call per shard, each within the budget: each
shard's copy of a list is a list of its own here, with its own bound
(toplists.shard_name).

Equal totals rank by key. An unseen key can equal the threshold only by having, in every
source cut at a bound (the database, each list), exactly the bound, and every source reads
equal counts in key order (stored_tops.py, toplists.py): so it comes after that source's
tie, the last key read with the bound, in each of them. Where one source's tie is at or
after the ``limit``-th known key (lists whose members are the keys, or the database), no
unseen key can take its place.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import Model

from . import live
from .conf import conf
from .events import PK, Target
from .objects import lookup_values_of, model_label
from .storage import resolve_targets
from .stored_tops import StoredTop
from .toplists import (
    LIST_BUCKETS,
    READ_BUDGET,
    SEP,
    URL,
    VIEW,
    PendingLists,
    kinds,
    name_shard,
    object_kind,
    split_name,
)

FIRST_DEPTH = 16
GROWTH = 4  # a list's depth, from one round to the next, when the lists' bound dominates
DB_GROWTH = 8  # the database's, when its bound does (its reads and asks cost less)
Pair = tuple[str, str]  # (kind, member)


@dataclass
class KeySpace:
    """How the keys of one ranking are named in the lists."""

    prefix: str  # the names of its lists start with it
    # keys -> their members, in the given kinds' lists at least (None: every kind)
    members_for: Callable[[set[str], frozenset[str] | None], dict[str, list[Pair]]]
    resolve: Callable[[set[Pair]], dict[Pair, str | None]]  # members to keys
    identity: Callable[[str], bool]  # kind -> its members are the keys themselves


def _same(pairs: set[Pair]) -> dict[Pair, str | None]:
    return {pair: pair[1] for pair in pairs}


def urls() -> KeySpace:
    return KeySpace(URL + SEP, lambda keys, _: {k: [(URL, k)] for k in keys}, _same, lambda _: True)


def view_names() -> KeySpace:
    return KeySpace(
        VIEW + SEP, lambda keys, _: {k: [(VIEW, k)] for k in keys if k}, _same, lambda _: True
    )


def objects(model: type[Model]) -> KeySpace:
    """Objects ranked by primary key, named in the lists by pk or by a slug."""
    label = model_label(model)
    pk_kind = object_kind(label, PK)

    def members_for(pks: set[str], kinds: frozenset[str] | None) -> dict[str, list[Pair]]:
        if kinds is not None and kinds <= {pk_kind}:  # no slug's lists: no query
            return {pk: [(pk_kind, pk)] for pk in pks}
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
    totals: dict[str, int]  # of those and of every key the lists named that could rank
    resolved: dict[Pair, str | None]
    cannot_rank: set[str]  # keys the lists named whose total cannot reach the list


@dataclass
class _Plan:
    """How deep one round reads: the database's first ``db`` keys (of each day's list),
    the first ``lists`` entries of each list of Redis (about: each of its sets is read
    ``per_set(lists)`` deep), and Redis's pending views of the keys of ``guess``."""

    db: int
    lists: int
    guess: set[str]
    # the kinds whose members are asked for (None: every kind): a remembered list's first
    # round asks for those of the lists it saw last time (no slug query when only pks)
    kinds: frozenset[str] | None = None


@dataclass
class _Outcome:
    ranked: list[tuple[str, int]] | None  # the list, if this round proved it
    more: set[str]  # else the keys whose pending views to ask for next
    deeper: bool  # and whether to read deeper (else only ask for those)
    db_bound: int  # the threshold's two parts: the database's
    lists_bound: int  # and the lists' (the sum of their bounds)
    lists: Counter[int]  # the lists in range in each shard (none read: no Redis)
    redis: bool  # whether Redis's lists were read
    kinds: frozenset[str]  # the kinds of the lists in range


def per_set(depth: int) -> int:
    """Entries read from each set of a list for a top about ``depth`` deep: twice its
    share, as a list's top is spread over its sets at random."""
    return max(2, -(-2 * depth // LIST_BUCKETS))


def work(plan: _Plan, lists: Counter[int]) -> int:
    """What one SNAPSHOT_LISTS call may have to do for ``plan`` at most, with ``lists``
    lists in range in each shard: each shard's call is asked the same and bounded alone,
    so the most of any shard (the script counts it exactly before reading; here a key
    counts as a member of every kind, which it is at most)."""
    per_list = 1 + (LIST_BUCKETS + 1) * per_set(plan.lists) + len(plan.guess)
    return per_list * max(lists.values(), default=0)


def top(
    stored: StoredTop,
    space: KeySpace,
    limit: int,
    first: date | None,
    last: date | None,
) -> list[tuple[str, int]]:
    """The ``limit`` largest totals of ``stored`` keys plus pending views, exactly, most
    viewed first (equal totals by key).

    Each round reads the database and Redis's lists (one SNAPSHOT_LISTS call per shard) to
    some depth; when that does not prove the list, the part of the threshold that is
    larger is read deeper: the database (cheap: its keys' pending views are asked for, a
    few microseconds each in Redis), or the lists (the costly part). A round whose call to
    Redis (any shard's) could exceed toplists.READ_BUDGET is not made: the list is then
    ranked on the database and this process's views alone, counted and logged as a failed
    live read (decision 43)."""
    identity = stored.identity(limit)
    start = max(2 * limit, FIRST_DEPTH)
    plan = _Plan(start, start, set())
    redis = conf.ASYNC_PROCESSING
    lists: Counter[int] = Counter()  # not known before the first call: the script checks
    remembered = _guesses.get(identity) if redis else None
    if remembered is not None:
        # The depths (and keys) the same list needed last time: one round, usually.
        plan = _Plan(remembered.db, remembered.lists, set(remembered.keys), remembered.kinds)
        lists = remembered.seen
        if not plan.guess:
            plan.guess = stored.keys(plan.db)
        if work(plan, lists) > READ_BUDGET:
            plan = _Plan(start, start, set())
            remembered = None
    if redis and remembered is None:
        plan.guess = stored.keys(plan.db)
    while True:
        if redis and work(plan, lists) > READ_BUDGET:
            live.lists_unavailable(f"A live most-viewed list needs over {READ_BUDGET} steps.")
            redis = False
        out = _round(stored, space, limit, first, last, plan, redis)
        if out.ranked is not None:
            if out.redis:
                _remember(identity, plan, out)
            return out.ranked
        redis, lists = out.redis, out.lists if out.redis else lists
        kinds, plan.kinds = plan.kinds, None
        if redis and kinds is not None and not out.kinds <= kinds:
            plan.guess |= out.more  # lists of a kind not asked for: ask again, for every kind
            continue
        if not redis:
            plan.db *= DB_GROWTH
            continue
        more = out.more - plan.guess
        if more and not out.deeper:
            plan.guess |= more
            continue
        deeper = _deeper(stored, space, plan, out, lists)
        if deeper is None:
            live.lists_unavailable(f"A live most-viewed list needs over {READ_BUDGET} steps.")
            redis = False
            plan.db *= DB_GROWTH
        else:
            plan = deeper


def _deeper(
    stored: StoredTop, space: KeySpace, plan: _Plan, out: _Outcome, lists: Counter[int]
) -> _Plan | None:
    """The next round's plan: the database read deeper (while it is cut), and the lists too
    when their bound is at least the database's; else the one or the other alone; else the
    same depths, asking for the keys found (their views in the lists that did not read
    them: under flat traffic, with shards, most keys read in one shard's copy of a list).
    None when no such plan fits in READ_BUDGET."""
    db = plan.db * DB_GROWTH if out.db_bound else plan.db
    deep = plan.lists * GROWTH if out.lists_bound else plan.lists
    if out.lists_bound >= out.db_bound:
        tries = [(db, deep), (plan.db, deep), (db, plan.lists)]
    else:
        tries = [(db, plan.lists)]
    for db_depth, depth in [*tries, (plan.db, plan.lists)]:
        guess = plan.guess | out.more
        if (db_depth, depth) == (plan.db, plan.lists) and guess <= plan.guess:
            continue
        if db_depth != plan.db:
            guess |= stored.keys(db_depth)
        deeper = _Plan(db_depth, depth, guess)
        if work(deeper, lists) <= READ_BUDGET:
            return deeper
    return None


# The depths and keys of the last successful read of each list (up to GUESSES lists): a
# list shown on every page is read in one round, with one database statement less. Only
# a guess: a key missing costs one more round.
GUESSES = 256
REMEMBERED_KEYS = 1_000  # more are read again from the database (one statement)


@dataclass(frozen=True)
class _Remembered:
    db: int
    lists: int
    keys: frozenset[str]
    seen: Counter[int]
    kinds: frozenset[str]


_guesses: dict[Hashable, _Remembered] = {}
_guesses_lock = threading.Lock()  # a server's threads read lists at the same time


def _remember(identity: Hashable, plan: _Plan, out: _Outcome) -> None:
    keys = frozenset(plan.guess) if len(plan.guess) <= REMEMBERED_KEYS else frozenset()
    with _guesses_lock:
        if len(_guesses) >= GUESSES and identity not in _guesses:
            del _guesses[next(iter(_guesses))]  # the oldest
        _guesses[identity] = _Remembered(plan.db, plan.lists, keys, out.lists, out.kinds)


def _round(
    stored: StoredTop,
    space: KeySpace,
    limit: int,
    first: date | None,
    last: date | None,
    plan: _Plan,
    redis: bool,
) -> _Outcome:
    """The ranking if this round's reads prove it; else what to read next."""
    guess = plan.guess if redis else set()
    members = space.members_for(guess, plan.kinds)
    ask = [pair for pairs in members.values() for pair in pairs]

    def db_read(pending: PendingLists) -> _Db:
        # The head's keys at this depth were read into ``guess`` just before, so their
        # pending views were asked for: one round is the common case.
        head = stored.head(plan.db, guess)
        # Only keys that could rank are looked for beyond the head: a key the head did not
        # read has at most its bound in the database, and the list's last total is at
        # least the ``limit``-th of the head's. The committed claims are still in
        # ``pending``: a ceiling taken from it is, if anything, too high.
        floor = _floor(head.totals.values(), limit)
        local = _local_pairs(pending, space, first, last)
        # A pair of the head's keys need not be resolved where its views were asked for
        # (or the member is the key): the views are then known without it.
        asked = set(head.keys) <= guess

        def known(kind: str) -> bool:
            return space.identity(kind) or (asked and (plan.kinds is None or kind in plan.kinds))

        pairs = set(local) | _reaching(pending, head.bound + sum(local.values()), floor, known)
        resolved = space.resolve(pairs)
        found = {key for key in resolved.values() if key} - head.totals.keys()
        views = _PendingViews(space, pending, members, resolved, (first, last))
        # Of those, only the ones that still could are summed in the database (the costly
        # statement: a key's rows of every day of the period).
        wanted = {key for key in found if head.bound + views.ceiling(key) >= floor}
        # With no bound, the head holds every key with stored views.
        more = stored.totals(wanted) if head.bound else dict.fromkeys(wanted, 0)
        totals = {**head.totals, **more}
        return _Db(head.keys, head.bound, head.tie_key, totals, resolved, found - wanted)

    c = per_set(plan.lists)
    db, pending = live.read_lists(space.prefix, first, last, c, ask, db_read, redis)
    names = pending.names()
    seen = Counter(name_shard(n) for n in names)
    views = _PendingViews(space, pending, members, db.resolved, (first, last))
    bound = views.bounds

    totals: dict[str, int] = {}
    ceilings: dict[str, int] = {}  # keys with components not read: their highest total
    for key in (set(db.totals) | set(views.known) | set(views.local)) - db.cannot_rank:
        total, unread = views.of(key)
        total += db.totals.get(key, 0)
        if unread:
            ceilings[key] = total + unread
        else:
            totals[key] = total
    ranked = sorted(((k_, n) for k_, n in totals.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))
    lists_bound = sum(views for views, _ in bound.values())
    redis_read = pending.snap is not None

    def outcome(done: list[tuple[str, int]] | None, deeper: bool) -> _Outcome:
        more = set() if done is not None else set(ceilings) | set(db.ranked)
        kinds = frozenset(kind for _, kind, _ in views.kinds_of)
        return _Outcome(done, more, deeper, db.bound, lists_bound, seen, redis_read, kinds)

    if len(ranked) < limit:
        if not ceilings and lists_bound == 0 and db.bound == 0:
            return outcome(ranked, False)
        return outcome(None, True)
    last_key, last_total = ranked[limit - 1]
    threshold = db.bound + lists_bound
    # A key read nowhere with a total equal to the threshold has, in every source cut
    # at its bound (the database, each list), exactly the bound, and so comes after that
    # source's tie: one tie at or after the last key ranked is enough.
    ties = [bound[n][1] for n in names if bound[n][0] and space.identity(split_name(n)[0])]
    if db.bound:
        ties.append(db.tie_key)
    beyond = last_total > threshold or (
        last_total == threshold and any(tie is not None and last_key <= tie for tie in ties)
    )
    if any(c >= last_total for c in ceilings.values()):
        return outcome(None, not beyond)
    return outcome(ranked[:limit], False) if beyond else outcome(None, True)


def _known(members: dict[str, list[Pair]], resolved: dict[Pair, str | None]) -> Known:
    """Each key's members by kind: those asked for it, and those the lists named."""
    known: Known = {key: dict(pairs) for key, pairs in members.items()}
    for (kind, member), key in resolved.items():
        if key:
            known.setdefault(key, {})[kind] = member
    return known


Known = dict[str, dict[str, str]]  # key -> kind -> its member in the lists of that kind


class _PendingViews:
    """A key's views pending in one live read: in Redis's lists (those read, or asked
    for) and in this process."""

    def __init__(
        self,
        space: KeySpace,
        pending: PendingLists,
        members: dict[str, list[Pair]],
        resolved: dict[Pair, str | None],
        days: tuple[date | None, date | None],
    ) -> None:
        self.pending, self.known = pending, _known(members, resolved)
        names = pending.names()
        self.bounds = {n: pending.bound(n) for n in names}
        self.kinds_of = [(name, *_kind(space, name)) for name in names]
        self.local: Counter[str] = Counter()
        for pair, n in _local_pairs(pending, space, *days).items():
            if key := resolved.get(pair):
                self.local[key] += n

    def of(self, key: str) -> tuple[int, int]:
        """(views read, the most views the lists that did not read it may hold)."""
        total, unread = self.local[key], 0
        for name, kind, identity in self.kinds_of:
            named = key if identity else self.known.get(key, {}).get(kind)
            views = self.pending.views(name, named) if named is not None else None
            if views is None:
                unread += self.bounds[name][0]
            else:
                total += views
        return total, unread

    def ceiling(self, key: str) -> int:
        return sum(self.of(key))


def _reaching(
    pending: PendingLists, base: int, floor: int, known: Callable[[str], bool]
) -> set[Pair]:
    """The (kind, member) pairs of the lists' entries read whose key could have ``floor``
    views, if not the head's: ``base`` (its most outside the lists) plus, in each list,
    its views there or at most that list's most (its first entry's, or its bound); and
    every pair of a kind whose views of the head's keys are not ``known`` without it."""
    names = pending.names()
    most = {
        n: max([pending.bound(n)[0], *(views for _, views in pending.top(n)[:1])]) for n in names
    }
    everywhere = base + sum(most.values())
    found: set[Pair] = set()
    for n in names:
        kind = split_name(n)[0]
        least = floor - everywhere + most[n]  # the fewest views in ``n`` that could reach it
        everyone = not known(kind)
        found.update((kind, m) for m, views in pending.top(n) if everyone or views >= least)
    return found


def _floor(totals: Iterable[int], limit: int) -> int:
    """The ``limit``-th largest of some keys' totals (0 with fewer): the list's last total
    is at least this."""
    ranked = sorted(totals, reverse=True)
    return ranked[limit - 1] if len(ranked) >= limit else 0


def _kind(space: KeySpace, name: str) -> tuple[str, bool]:
    """A list's kind, and whether its members are the keys themselves."""
    kind = split_name(name)[0]
    return kind, space.identity(kind)


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
