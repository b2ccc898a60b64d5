"""Process counters summed across the processes of a host, through prometheus_client's
multiprocess mode.

A scrape reaches one process; the package's counters (stats.py) live in each process's
memory. When ``PROMETHEUS_MULTIPROC_DIR`` is set (prometheus_client's own switch, which
the site's other metrics then follow too), every count is also added to one labelled
counter in the files of that directory, which prometheus_client keeps per process id; a
scrape sums them, the counts of processes that have exited included (a counter must not
go down when a worker is recycled). Web processes, Celery workers and ``manage.py``
commands of the host all write there, so the answering process reports theirs too.

The figures that Redis and the database already share between processes and hosts are
read at scrape time instead (figures.py): they need no file.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter
from prometheus_client.multiprocess import MultiProcessCollector

from django_pageviews import stats
from django_pageviews.log_limit import LogLimit

from .figures import multiprocess_directory

logger = logging.getLogger(__name__)

# The counter the files hold: one sample per stats counter name. Not in any registry:
# the collector reports it regrouped (names.py); MultiProcessCollector shows it raw.
SHARED = "pageviews_process_counter"
LABEL = "name"

_counter: Counter | None = None
# Each name's child of the counter, found once: ``labels()`` validates and locks each time.
_children: dict[str, Any] = {}
_log = LogLimit()


def install() -> bool:
    """Copy every count of this process to the files, from now on; True if set up (the
    directory is set). Called once by the app's ``ready()``: before any count."""
    global _counter
    if multiprocess_directory() is None:
        return False
    if _counter is None:
        _counter = Counter(
            SHARED, "Page-view process counters, by stats name.", [LABEL], registry=None
        )
    stats.on_incr = _copy
    return True


def _copy(name: str, amount: int) -> None:
    """stats.on_incr: runs on the request path, so it never raises."""
    try:
        child = _children.get(name)
        if child is None:
            assert _counter is not None
            child = _children.setdefault(name, _counter.labels(name))
        child.inc(amount)
    except Exception:
        if _log.due():
            logger.exception("Could not add a page-view count to %s.", multiprocess_directory())


def shared_counts(path: str) -> dict[str, int]:
    """Every process's counts summed, from the files in ``path``."""
    counts: dict[str, int] = {}
    # prometheus_client leaves this class untyped.
    collector = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
    for family in collector.collect():  # type: ignore[no-untyped-call]
        if family.name != SHARED:
            continue
        for sample in family.samples:
            if sample.name == SHARED + "_total":
                name = sample.labels[LABEL]
                counts[name] = counts.get(name, 0) + int(sample.value)
    return counts
