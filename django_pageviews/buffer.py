"""The in-process buffer: the whole pipeline when PAGEVIEW_ASYNC_PROCESSING is False.

Requests append events under a lock held for a few dictionary operations; a daemon writer
thread flushes when PAGEVIEW_BATCH_SIZE views wait or the oldest has waited
PAGEVIEW_MAX_BUFFER_AGE seconds: that age bounds what a SIGKILL or an OOM kill can lose
(a process that stops in order writes everything at its shutdown). A batch that fails to
write keeps its batch id and is retried first: if the failure was a lost commit
acknowledgement, the replay is skipped.

Views not yet in the database are kept as per-target counts so that reads can add them:
a read holds ``commit_lock`` so that a batch is never seen both pending and committed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from django.db import close_old_connections

from . import forks, stats
from .conf import conf
from .db_errors import is_data_error
from .events import PageViewEvent, Target, current_day
from .log_limit import LogLimit
from .storage import trim_old_rows, write_batch

logger = logging.getLogger(__name__)

# (batch id, events, requests not counted by (day, reason)): retried as one.
Batch = tuple[str, list[PageViewEvent], Counter[tuple[date, str]]]

TRIM_INTERVAL = 3600.0
RETRY_DELAYS = (1.0, 60.0)  # first retry after a failed write, and the longest wait
MAX_ATTEMPTS = 5  # failures of one batch for its data before it is split


class InProcessBuffer:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._writer_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.commit_lock = threading.Lock()
        self._queue: deque[PageViewEvent] = deque()
        self._failed: deque[Batch] = deque()  # batches that failed to write, oldest first
        self._attempts: dict[str, int] = {}  # batch id -> failures for its data
        self._in_flight: list[PageViewEvent] = []
        self._pending: Counter[Target] = Counter()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # set: the running writer thread ends
        self._overflow_log = LogLimit()
        self._last_trim = time.monotonic()  # a new process trims after its first hour
        self.last_error: BaseException | None = None

    # -- producer side ---------------------------------------------------------------

    def add(self, event: PageViewEvent) -> bool:
        """Queue one event; False (counted) when the buffer is full."""
        forks.check()
        with self._lock:
            if self._size() >= conf.MAX_BUFFER_SIZE:
                self._overflow()
                return False
            first = not self._queue
            self._queue.append(event)
            self._pending[event.target] += 1
            wake = first or len(self._queue) >= conf.BATCH_SIZE
        if wake:
            self._ensure_writer()
            self._wakeup.set()
        return True

    def _size(self) -> int:
        return len(self._queue) + len(self._in_flight) + sum(len(b[1]) for b in self._failed)

    def _overflow(self) -> None:
        stats.incr(stats.DROPPED)
        if self._overflow_log.due():
            logger.warning(
                "Page-view buffer full (PAGEVIEW_MAX_BUFFER_SIZE=%s): dropping views until "
                "the writer catches up.",
                conf.MAX_BUFFER_SIZE,
            )

    # -- reading ---------------------------------------------------------------------

    @contextmanager
    def consistent_read(
        self, with_events: bool = False
    ) -> Iterator[tuple[Counter[Target], list[PageViewEvent]]]:
        """Pending counts per target (and, if asked, the pending events themselves), with
        commits held off while the caller also reads the database."""
        with self.commit_lock:
            with self._lock:
                pending = self._pending.copy()
                events: list[PageViewEvent] = []
                if with_events:
                    events = [*self._in_flight, *self._queue]
                    for _, failed, _ in self._failed:
                        events += failed
            yield pending, events

    def pending_count(self) -> int:
        """Views not yet in the database. A commit in progress is waited for: a caller who
        has just seen a batch in the database must not find it pending too."""
        with self.commit_lock, self._lock:
            return self._size()

    def oldest_age(self) -> float | None:
        """Seconds the oldest view not yet written has waited (failed batches, the batch
        being written, then the queue), or None when none waits: the in-process drain lag."""
        with self._lock:
            firsts = [events[0].timestamp for _, events, _ in self._failed if events]
            firsts += [e.timestamp for e in self._in_flight[:1]]
            firsts += [self._queue[0].timestamp] if self._queue else []
        return max(0.0, time.time() - min(firsts)) if firsts else None

    def discard(self) -> int:
        """Drop every buffered view, after any running flush; the number dropped. The
        emptied buffer warns again the next time it is full."""
        with self._flush_lock, self._lock:
            dropped = self._size()
            self._queue.clear()
            self._failed.clear()
            self._attempts.clear()
            self._pending.clear()
            self.last_error = None
            self._overflow_log.reset()
            stats.take_unsaved()
            return dropped

    # -- writer side -----------------------------------------------------------------

    def flush(self, due_only: bool = False) -> int:
        """Write every queued view now; the number written. Errors are logged, not raised:
        the failed batch stays queued (see ``last_error``). With ``due_only`` (the writer
        thread), a partial batch is left until its oldest view is ``max_age()`` old.
        """
        written = 0
        with self._flush_lock:
            while (batch := self._take_batch(due_only)) is not None:
                batch_id, events, skipped = batch
                try:
                    with self.commit_lock:
                        count = write_batch(batch_id, events, skipped=skipped)
                        self._committed(events)
                except Exception as exc:
                    self.last_error = exc
                    stats.incr(stats.FLUSH_ERROR)
                    logger.exception("Writing %d page views failed; will retry.", len(events))
                    with self._lock:
                        self._in_flight = []
                        self._failed.extendleft(reversed(self._after_failure(batch, exc)))
                    break
                self.last_error = None
                self._attempts.pop(batch_id, None)
                stats.incr(stats.WRITTEN, count)
                written += count
                if not events:  # requests not counted, saved: do not spin on new ones
                    break
        return written

    def _after_failure(self, batch: Batch, exc: Exception) -> list[Batch]:
        """What to retry. A batch refused for its data (a value the database or the
        conversion to a row rejects) holds something it cannot store: after MAX_ATTEMPTS
        it is split into one batch per view, and a single view that still fails is dropped
        (logged, counted as invalid), so that it cannot hold back every view behind it.
        Any other error (database down, table missing during a deploy) is waited out, as
        long as it takes."""
        if not is_data_error(exc):
            return [batch]
        batch_id, events, skipped = batch
        attempts = self._attempts.pop(batch_id, 0) + 1
        if attempts < MAX_ATTEMPTS:
            self._attempts[batch_id] = attempts
            return [batch]
        if len(events) > 1 or (events and skipped):
            singles: list[Batch] = [
                (f"{batch_id}-{i}", [e], Counter()) for i, e in enumerate(events)
            ]
            return singles + ([(f"{batch_id}-s", [], skipped)] if skipped else [])
        logger.error(  # no address or user agent in a log
            "Dropping page-view batch %s after %d failed attempts: views %s, skip counts %s.",
            batch_id,
            attempts,
            [(e.event_id, e.target.url) for e in events],
            dict(skipped),
        )
        self._pending.subtract(e.target for e in events)
        self._pending += Counter()
        if events:
            stats.incr(stats.SKIP_INVALID)
            stats.give_back(Counter({(current_day(), stats.SKIP_INVALID): 1}))
        return []

    def _trim_old_rows(self) -> None:
        """Forget old batch ids (replays only ever come within minutes) and old salts, at
        most once per TRIM_INTERVAL."""
        now = time.monotonic()
        if now - self._last_trim < TRIM_INTERVAL:
            return
        self._last_trim = now
        try:
            trim_old_rows()
        except Exception:
            logger.exception("Trimming old page-view batch ids failed.")

    def _take_batch(self, due_only: bool) -> Batch | None:
        with self._lock:
            if self._failed:
                batch = self._failed.popleft()
            elif (self._queue or stats.unsaved_age() is not None) and (
                not due_only or self._due_locked() == 0.0
            ):
                size = min(conf.BATCH_SIZE, len(self._queue))
                events = [self._queue.popleft() for _ in range(size)]
                batch = (uuid.uuid4().hex, events, stats.take_unsaved())
            else:
                return None
            self._in_flight = batch[1]
            return batch

    def _committed(self, events: list[PageViewEvent]) -> None:
        with self._lock:
            self._in_flight = []
            self._pending.subtract(e.target for e in events)
            self._pending += Counter()  # drop the zeros

    def _due(self) -> float | None:
        """Seconds until the next flush is due (0: now), or None when nothing waits."""
        with self._lock:
            return self._due_locked()

    def _due_locked(self) -> float | None:
        if len(self._queue) >= conf.BATCH_SIZE or self._failed:
            return 0.0
        if self._queue:
            waited = time.time() - self._queue[0].timestamp
            # A view from the future: the wall clock was stepped back since (NTP, a VM
            # resumed). Written now, rather than held for the size of the step.
            return 0.0 if waited < 0 else max(0.0, max_age() - waited)
        skipped_age = stats.unsaved_age()  # only requests not counted: saved as late
        return None if skipped_age is None else max(0.0, max_age() - skipped_age)

    def wake_for_skips(self) -> None:
        """Skip counts are waiting: make sure the writer saves them in time, even when no
        view comes to carry them (a process that sees only crawlers)."""
        forks.check()
        self._ensure_writer()
        self._wakeup.set()

    def stop_writer(self) -> None:
        """The process is stopping and its shutdown writes what is left: the writer thread
        ends after the write it may be doing, so that it does not contend with the
        shutdown's retries against a failing database (each attempt can wait out a lock
        or connect timeout). A view added later starts a new writer."""
        with self._writer_lock:
            self._stop.set()
            self._wakeup.set()
            self._thread = None

    def _ensure_writer(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        # Not self._lock: this is also reached from code that holds it (a full buffer
        # counting a dropped view).
        with self._writer_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()  # the stopped thread keeps its own, set
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="pageviews-writer", daemon=True
                )
                self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        delay = RETRY_DELAYS[0]
        while True:
            due = self._due()
            self._wakeup.wait(TRIM_INTERVAL if due is None else min(due, TRIM_INTERVAL))
            self._wakeup.clear()
            if stop.is_set():
                return
            try:
                if self._due() == 0.0:
                    self.flush(due_only=True)
                self._trim_old_rows()  # busy or idle: old salts must go on time
            finally:
                close_old_connections()
            if self.last_error is None:
                delay = RETRY_DELAYS[0]
            else:  # back off while the database is failing
                if stop.wait(delay):  # not _wakeup: new views must not end the pause
                    return
                delay = min(delay * 2, RETRY_DELAYS[1])


def max_age() -> float:
    """How long a view may wait: PAGEVIEW_MAX_BUFFER_AGE, or a lower BUFFER_TIMEOUT (the
    0.2.x setting for it, which a site may have lowered on purpose)."""
    return float(min(conf.MAX_BUFFER_AGE, conf.BUFFER_TIMEOUT))


buffer = InProcessBuffer()
# A forked child starts empty: the parent still holds and writes the events it copied.
forks.after_fork(buffer._reset)
stats.on_first_unsaved = buffer.wake_for_skips
