"""Write what is buffered before the process goes away.

A deploy or a restart often meets a database that is briefly away (a failover, a
maintenance window, a connection limit hit by the new processes starting): at exit, a
failed write is therefore retried for up to SHUTDOWN_RETRY_SECONDS (and at least once:
one attempt may itself wait out a lock or connect timeout), well inside the time
servers and systemd give a stopping process (gunicorn 30 s, systemd 90 s). Past that, the
views left are dropped: counted, and logged as an error with their number. Never a silent
loss, and never a process that refuses to stop.
"""

from __future__ import annotations

import logging
import time

from django.db import connections

from . import stats
from .buffer import buffer
from .conf import conf
from .flushing import flush_report

logger = logging.getLogger(__name__)

SHUTDOWN_RETRY_SECONDS = 10.0
RETRY_PAUSE = 0.5  # five tries of a batch refused for its data fit well inside the bound

_gave_up: list[bool] = []  # once this process dropped views at exit, later calls don't wait


def flush_all() -> int:
    """One attempt of the exit's flush (``flushing.flush_report`` at exit): ship this
    process's sync batcher to Redis (async mode; what Redis refuses goes to the
    fallback), then write the in-process buffer; the number of views written. Redis
    itself is left to the Celery workers; ``django_pageviews.flush`` drains it too."""
    try:
        return flush_report(at_exit=True).written
    finally:
        connections.close_all()


def flush_before_exit(retry_seconds: float = SHUTDOWN_RETRY_SECONDS) -> int:
    """``flush_all``, retried while the database fails, for ``retry_seconds`` (and at
    least once); then what is still buffered is dropped, counted and logged. The views
    written."""
    buffer.stop_writer()
    deadline = time.monotonic() + (0.0 if _gave_up else retry_seconds)
    written = flush_all()
    retried = bool(_gave_up)
    # At least one retry: a single attempt may take the whole bound (a lock or connect
    # timeout), and an outage is often over by then.
    while buffer.last_error is not None and (time.monotonic() < deadline or not retried):
        time.sleep(RETRY_PAUSE)
        written += flush_all()
        retried = True
    error = buffer.last_error
    if error is not None:
        _gave_up.append(True)
        pending = buffer.pending_count()
        stats.incr(stats.DROPPED, pending)  # before discard(), which takes its unsaved delta
        buffer.discard()
        logger.error(  # the error's class only: its text may quote a row
            "%d page views could not be written before exit and are lost: the database "
            "kept failing (%s) for %s s.",
            pending,
            type(error).__name__,
            retry_seconds,
        )
    return written


def shipped_so_far() -> int:
    """Views this process has shipped to Redis since it started (0 in-process)."""
    return stats.snapshot().get(stats.SHIPPED, 0)


def log_exit(moment: str, shipped_before: int, written: int, always: bool = False) -> None:
    """Log what leaving did, each part as what it is: in async mode a view shipped to
    Redis is not written yet (a Celery worker drains it), so "wrote 0" after shipping one
    would read as a lost view. ``written`` counts the in-process buffer: all views
    in-process, those Redis did not take (``PAGEVIEW_REDIS_FALLBACK``) in async mode.
    ``always``: log even when nothing was left to ship or write.
    """
    if conf.ASYNC_PROCESSING:
        total = shipped_so_far()
        shipped = total - shipped_before
        if shipped or always:
            logger.info(
                "Shipped %d page views to Redis %s (%d since this process started); a "
                "Celery worker writes them to the database.",
                shipped,
                moment,
                total,
            )
        if written:
            logger.info(
                "Wrote %d page views that Redis did not take to the database %s.",
                written,
                moment,
            )
    elif written or always:
        logger.info("Wrote %d buffered page views %s.", written, moment)


def flush_at_exit() -> None:
    before = shipped_so_far()
    written = flush_before_exit()
    log_exit("at exit", before, written)
