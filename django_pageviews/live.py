"""Views not yet in the database, read exactly with a database read.

Two sources: the in-process buffer (its commit lock is held across the database read) and,
in async mode, Redis, where the live totals count every view not yet *acknowledged*. A
batch is claimed (CLAIM: its views move from ``pending`` into the claim's chunk, the claim
sequence number goes up), committed to the database with its batch id, then acknowledged
(ACK: its views leave the live totals). Between commit and acknowledgement its views are
in both places; the Redis snapshot lists the open claims with their counts so that a
reader can take out those the database already holds.

Why a read is exact. The Redis snapshot is taken at time R (atomically), the database
read sees the database as of time S > R, and a view counts once if it is in exactly one of
the two, which holds when the set of claims committed as of S is known and every batch
committed as of S was claimed before R:

- a batch acknowledged before R is in the database and not in Redis's totals;
- a batch claimed before R and not acknowledged is an open claim of the snapshot: in
  Redis's totals, and also in the database if it is committed as of S, which the reader
  checks against S itself, then subtracts;
- a batch claimed after R may hold views that were pending at R (in Redis's totals) and be
  committed as of S (in the database too): the one case to exclude. Claims are counted by
  the sequence number: read again after S, unchanged, it proves that no claim was made
  between R and S. Views shipped after R that reach the database by S count once (there).

With no open claim in the snapshot (the common case), a batch committed during the database
read would have to be claimed after R: the sequence number read after the database read
shows that none was, and the read costs no query more than its own. A read of one
statement can prove it without that round trip (``Fence``, decision 46): every batch is
committed with its claim's mark (the shard's epoch and claim sequence number), so a batch
claimed after R is one of R's epoch with a higher number, which the statement itself looks
for, in its own snapshot S. Found (or not asked), the sequence number is read as above.

Outside a transaction (autocommit), the database reads run in one transaction whose
snapshot S is taken at its first query (REPEATABLE READ on PostgreSQL and MySQL/MariaDB,
SQLite's read transaction), after R; the committed-claims check is that first query, the
sequence number is read right after it, and the data reads that follow see S however
long they take. Only a claim made within the few milliseconds between R and that query
makes the attempt start again.

Inside a caller's transaction (ATOMIC_REQUESTS) the isolation level is already set: which
claims are committed is read before and after the data read, and the sequence number after
both. Equal, unchanged: no batch was committed between the two checks (it would have to be
an open claim, seen changing, or a new one, seen by the sequence), so the database did not
change under the data read. Under REPEATABLE READ set by the caller (not Django's default
on MySQL), the transaction's snapshot may predate R: batches acknowledged since it was
taken are then in neither source until the transaction ends.

With several shards (decision 42), R is one snapshot per shard, taken one after the other,
and all before S: a batch holds views of one shard only, so the argument holds shard by
shard, with the sequence number of each (redis/snapshots.py).

Bounded: after ATTEMPTS failed attempts, the reader holds new claims off (a key that CLAIM
honours, with an expiry of HOLD_MS; a drain's claim waits) and tries again. With no new
claim possible, an attempt outside a transaction succeeds at once, and one inside a
transaction fails only when one of the finitely many open claims is committed during it:
at most one more attempt per open claim. A hold that expires under a read slower than
HOLD_MS is the only way to an inexact read, which is then counted (``read_inexact``) and
logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from . import stats
from .buffer import buffer
from .conf import conf
from .events import PageViewEvent, Target, local_day
from .ledger import claimed_after, committed_counts
from .models import ProcessedBatch
from .toplists import PendingLists, list_entries, shard_name
from .wire import dimension_totals

if TYPE_CHECKING:
    from .redis.snapshots import ListsSnapshot, Snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S", "Snapshot", "ListsSnapshot")

ATTEMPTS = 3  # plain attempts before new claims are held off
READ_INEXACT = "read_inexact"

DayTarget = tuple[date, Target]


@dataclass(frozen=True)
class Fence:
    """What a read of one statement adds to it to prove its snapshot exact alone: ``sql``,
    an expression that is 1 when the database holds a batch claimed after the Redis
    snapshot (ledger.claimed_after), on the database ``using`` only (decision 46)."""

    sql: str
    params: list[Any]
    using: str


# A database read of one statement that also selects a Fence's expression: (its result,
# whether the expression was 1, or the fence was not used).
Fenced = Callable[[Fence], tuple[T, bool]]


def read(
    db_read: Callable[[], T], dims: list[str], fenced: Fenced[T] | None = None
) -> tuple[T, Counter[Target], Counter[str]]:
    """(``db_read()``, targets pending in this process, pending Redis totals of ``dims``).
    ``fenced``: the same read, with a Fence in its statement, which spares a round trip
    to Redis when it finds no later claim."""
    with buffer.consistent_read() as (local, _):
        if not conf.ASYNC_PROCESSING:
            return db_read(), local, Counter()
        with _unshipped() as unshipped:
            local.update(e.target for e in unshipped)
            try:
                db, remote = _read_dims(db_read, dims, fenced)
            except Exception:
                return _redis_unavailable(db_read), local, Counter()
            return db, local, remote


def read_lists(
    prefix: str,
    first: date | None,
    last: date | None,
    c: int,
    ask: list[tuple[str, str]],
    db_read: Callable[[PendingLists], T],
    redis: bool = True,
) -> tuple[T, PendingLists]:
    """(``db_read(pending)``, the views not yet in the database by day-list, toplists.py).

    Of the lists whose name starts with ``prefix`` and whose day is in range: the first
    ``c`` entries of each of their sets and the views of the (kind, member) pairs of
    ``ask`` (and, within the call's budget, of the entries read) in every list of their
    kind; and this process's pending views. The database read is given the same (without
    the committed claims taken out), to choose what to read. Without ``redis`` (a caller
    that already fell back), or when Redis fails or refuses a read over its budget
    (redis.snapshots.ListsOverBudget: counted and logged as a failure), the lists are
    left out."""
    with buffer.consistent_read(with_events=True) as (_, events):
        if not conf.ASYNC_PROCESSING:
            pending = PendingLists(None, Counter(), _by_day(events))
            return db_read(pending), pending
        with _unshipped() as unshipped:
            local = _by_day(events + unshipped)
            if not redis:
                pending = PendingLists(None, Counter(), local)
                return db_read(pending), pending
            try:
                return _read_lists(prefix, first, last, c, ask, db_read, local)
            except Exception:
                pending = PendingLists(None, Counter(), local)
                return _redis_unavailable(lambda: db_read(pending)), pending


def _by_day(events: list[PageViewEvent]) -> Counter[DayTarget]:
    return Counter((local_day(e.timestamp), e.target) for e in events)


def _unshipped() -> AbstractContextManager[list[PageViewEvent]]:
    """Views this process's thread batcher has not shipped yet, with its shipping held
    off until the read is done: a view is never seen both unshipped and in Redis."""
    from .redis.sync_batcher import batcher

    return batcher.holding()


def _redis_unavailable(db_read: Callable[[], T]) -> T:
    # A page must still render: count what the database has, and say so.
    lists_unavailable("Live page-view counts unavailable from Redis.", exc_info=True)
    return db_read()


def lists_unavailable(message: str, exc_info: bool = False) -> None:
    """A live read goes on without Redis (the database's counts and this process's):
    counted as a read error, and logged."""
    stats.incr(stats.READ_ERROR)
    logger.warning(message, exc_info=exc_info)


def _read_dims(
    db_read: Callable[[], T], dims: list[str], fenced: Fenced[T] | None
) -> tuple[T, Counter[str]]:
    from .redis.snapshots import snapshot

    def read_db(snap: Snapshot) -> tuple[T, bool]:
        """The database read, and whether its fence proved it (no later claim)."""
        fence = _fence(snap) if fenced is not None else None
        if fenced is None or fence is None:
            return db_read(), False
        value, later = fenced(fence)
        return value, not later

    snap, (db, _), committed = _consistently(
        lambda client: snapshot(client, dims), read_db, lambda read: read[1]
    )
    # The live totals still include claims already committed: take those out.
    pending: Counter[str] = Counter(snap.values)
    wanted = set(dims)
    for counts in committed.values():
        for dim, n in dimension_totals(counts.items()).items():
            if dim in wanted:
                pending[dim] -= n
    return db, pending


def _read_lists(
    prefix: str,
    first: date | None,
    last: date | None,
    c: int,
    ask: list[tuple[str, str]],
    db_read: Callable[[PendingLists], T],
    local: Counter[DayTarget],
) -> tuple[T, PendingLists]:
    from .redis.snapshots import snapshot_lists

    def take(client: Any) -> ListsSnapshot:
        iso = (first.isoformat() if first else "", last.isoformat() if last else "")
        return snapshot_lists(client, prefix, *iso, c, ask)

    snap, db, committed = _consistently(
        take, lambda snap: db_read(PendingLists(snap, Counter(), local))
    )
    # The lists still count the claims already committed: those are taken out, of the
    # lists of their shard.
    taken: Counter[tuple[str, str]] = Counter()
    for batch_id, counts in committed.items():
        shard = snap.claim_shards.get(batch_id, 0)
        for (name, member), n in list_entries(counts.items()).items():
            named = shard_name(shard, name)
            if named in snap.tops:
                taken[(named, member)] += n
    return db, PendingLists(snap, taken, local)


# Of the open claims, the counts the database holds (ledger.committed_counts).
Committed = dict[str, dict[str, int]]


def _fence(snap: Snapshot) -> Fence | None:
    """The fence of a snapshot without open claims whose every shard has an epoch (with
    open claims, or a shard never shipped to, the sequence number is read again)."""
    if snap.claims or not snap.marks:
        return None
    using = router.db_for_read(ProcessedBatch) or DEFAULT_DB_ALIAS
    return Fence(*claimed_after(snap.marks, using), using)


def _consistently(
    take: Callable[[Any], S],
    db_read: Callable[[S], T],
    proven: Callable[[T], bool] = lambda _: False,
) -> tuple[S, T, Committed]:
    """A Redis snapshot and a database read that agree on which claims are committed.

    A few plain attempts; then new claims are held off (a short-lived key the CLAIM script
    honours) and the read is repeated until it is consistent, which takes at most one
    attempt more per open claim (see the module docstring). Only a hold that expires
    under a read slower than HOLD_MS ends with an inconsistent read: counted and logged.
    """
    from .redis.client import get_client
    from .redis.snapshots import hold_claims

    client = get_client()
    alias = router.db_for_read(ProcessedBatch) or DEFAULT_DB_ALIAS
    connection = connections[alias]
    own = connection.get_autocommit() and not connection.in_atomic_block
    with_claims = _in_snapshot if own else _in_callers_transaction

    def attempt(
        client: Any, alias: str, take: Callable[[Any], S], db_read: Callable[[S], T], last: bool
    ) -> Attempt[S, T]:
        snap = take(client)
        if snap.claims:
            return snap, with_claims(client, alias, snap, db_read, last)
        return snap, _without_claims(client, snap, db_read, proven, last)

    for _ in range(ATTEMPTS):
        snap, done = attempt(client, alias, take, db_read, False)
        if done is not None:
            return done
    with hold_claims(client, snap.shards):
        snap, done = attempt(client, alias, take, db_read, False)
        # No claim is made now: each failure is a commit of one of the open claims.
        for _ in range(len(snap.claims) + 1):
            if done is not None:
                return done
            snap, done = attempt(client, alias, take, db_read, False)
    stats.incr(READ_INEXACT)
    logger.warning("A live page-view read could not be made consistent; it may be off.")
    done = attempt(client, alias, take, db_read, True)[1]
    assert done is not None
    return done


Done = tuple[S, T, Committed] | None
Attempt = tuple[S, Done[S, T]]


def _without_claims(
    client: Any, snap: S, db_read: Callable[[S], T], proven: Callable[[T], bool], last: bool
) -> Done[S, T]:
    """No open claim: a batch committed during the database read would have to be claimed
    after the snapshot, which the read's own fence (``proven``) or else the sequence
    number, read after it, shows. No query more."""
    from .redis.snapshots import claim_sequence

    db = db_read(snap)
    if proven(db):
        return snap, db, {}
    if claim_sequence(client, snap.shards) != snap.seq and not last:
        return None
    return snap, db, {}


def _in_snapshot(
    client: Any, alias: str, snap: S, db_read: Callable[[S], T], last: bool
) -> Done[S, T]:
    """The database reads in one snapshot, established after the Redis snapshot; no
    result if a claim was made between the two (the read is then repeated)."""
    from .redis.snapshots import claim_sequence

    with transaction.atomic(using=alias):
        _snapshot_isolation(connections[alias])
        committed = _committed(snap.claims, alias)  # the first read: the snapshot is taken
        if claim_sequence(client, snap.shards) != snap.seq and not last:
            return None
        return snap, db_read(snap), committed


def _in_callers_transaction(
    client: Any, alias: str, snap: S, db_read: Callable[[S], T], last: bool
) -> Done[S, T]:
    """Inside a transaction of the caller's (ATOMIC_REQUESTS), whose isolation level is
    set: which claims are committed is read before and after the database read."""
    from .redis.snapshots import claim_sequence

    before = _committed(snap.claims, alias)
    db = db_read(snap)
    after = _committed(snap.claims, alias)
    if (before != after or claim_sequence(client, snap.shards) != snap.seq) and not last:
        return None
    return snap, db, after


def _snapshot_isolation(connection: BaseDatabaseWrapper) -> None:
    """Make the transaction just begun read one snapshot, taken at its first query.
    SQLite's read transaction already does (its first SELECT takes it)."""
    if connection.vendor in ("postgresql", "mysql"):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _committed(claims: dict[str, dict[str, int]], alias: str) -> Committed:
    return committed_counts(claims, alias)
