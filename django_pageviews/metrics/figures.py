"""The pipeline's figures as operators watch them: one report for Prometheus and the JSON.

Three sources, each named in the report because they do not cover the same processes:

- **process counters** (stats.py): what one process counted since it started: views
  recorded, shipped, written, spilled and dropped, requests not counted by reason, errors.
  With ``PROMETHEUS_MULTIPROC_DIR`` set, every process of the host also keeps them in
  prometheus_client's files (multiprocess.py) and the report sums those: the counts of
  every process, those that have exited included (``process_scope``);
- **Redis** (the Redis path): what waits to be drained, for the whole site, and what
  every drain and every process's fallback added to its counters hash;
- **the database**: when a batch was last written, for the whole site.

Reading Redis or the database may fail (that is when they are watched most): the figure
is then null, ``reachable`` false and the failure counted (``metrics_error``), and the
rest is reported. A scrape never fails because a store is down; nor because the
multiprocess files cannot be read (this process's counters are then reported, with
``process_scope`` ``this_process``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from django_pageviews import stats
from django_pageviews.buffer import buffer
from django_pageviews.conf import conf
from django_pageviews.log_limit import LogLimit
from django_pageviews.models import ProcessedBatch, UnsettledShipment

from .names import (
    ERRORS,
    FALLBACK_ACTIONS,
    FALLBACK_REASONS,
    GROUPED,
    NOT_COUNTED,
    SPILLED,
    VIEW_OUTCOMES,
    fallback_counter,
)

logger = logging.getLogger(__name__)

SCHEMA = 1  # bumped when a key changes meaning or goes; new keys do not bump it
THIS_PROCESS = "this_process"
ALL_PROCESSES = "all_processes"
REDIS_FIGURES = (
    "pending_views",
    "pending_count_fields",
    "claimed_batches",
    "set_aside_batches",
    "restored_groups",
    "oldest_pending_age_seconds",
    "oldest_claim_age_seconds",
    "last_drain_age_seconds",
    "drained_views",
)
# redis.buffer.status's names for the figures above that it reports under another name
_STATUS_NAMES = {"set_aside_batches": "batches_set_aside"}
DATABASE_FIGURES = ("last_batch_age_seconds", "unsettled_shipments")

# prometheus_client's switch for its multiprocess mode (metrics/multiprocess.py).
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

_log = LogLimit()


def multiprocess_directory() -> str | None:
    """The multiprocess directory, when this process has one."""
    return os.environ.get(DIRECTORY_VARIABLE) or None


def metrics_report(multiprocess_dir: str | None = None) -> dict[str, Any]:
    """The report (docs/howto/monitoring.md gives its schema). ``multiprocess_dir``: sum
    the process counters of prometheus_client's files there instead of this process's."""
    now = time.time()
    redis = redis_figures(now) if conf.ASYNC_PROCESSING else None
    database = database_figures(now)
    # Read last: a failure counted just above is in this report.
    counts, scope = process_counts(multiprocess_dir)
    oldest_buffered = buffer.oldest_age()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "process_scope": scope,
        **process_figures(counts),
        "buffer": {
            "buffered_views": buffer.pending_count(),
            "oldest_buffered_age_seconds": _seconds(oldest_buffered),
        },
        "redis": redis,
        "database": database,
    }
    report["drain_lag_seconds"] = _seconds(drain_lag(oldest_buffered, redis))
    return report


def process_counts(multiprocess_dir: str | None) -> tuple[dict[str, int], str]:
    """The process counters and whose they are. The files of ``multiprocess_dir`` may be
    unreadable (a directory removed or not mounted, a file cut short by a full disk): the
    scrape then reports this process's own counters, says so in ``process_scope``, and
    counts the failure, rather than failing."""
    if multiprocess_dir:
        # Imported here: prometheus_client is an optional dependency (the prometheus
        # extra), needed only by sites that set the directory.
        from .multiprocess import shared_counts

        try:
            return shared_counts(multiprocess_dir), ALL_PROCESSES
        except Exception as exc:
            _failed(f"the multiprocess directory {multiprocess_dir}", exc)
    return stats.snapshot(), THIS_PROCESS


def drain_lag(oldest_buffered: float | None, redis: dict[str, Any] | None) -> float | None:
    """How long the oldest view not yet in the database has waited: in this process's
    buffer (the in-process path, and views spilled from the Redis path) or in Redis; 0
    when none waits, None when Redis did not answer (unknown)."""
    if redis is not None and not redis["reachable"]:
        return None
    waits = [oldest_buffered, redis["oldest_pending_age_seconds"] if redis else None]
    return max((w for w in waits if w is not None), default=0.0)


def process_figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """The process counters, grouped as names.py says."""
    views = {outcome: counts.get(name, 0) for outcome, name in VIEW_OUTCOMES.items()}
    fallback = _fallback(counts)
    views[SPILLED] = sum(fallback["spilled"].values())
    return {
        "views": views,
        "not_counted": {reason: counts.get(reason, 0) for reason in NOT_COUNTED},
        "fallback": fallback,
        "errors": {kind: counts.get(kind, 0) for kind in ERRORS},
        "events": {name: n for name, n in sorted(counts.items()) if name not in GROUPED},
    }


def redis_figures(now: float) -> dict[str, Any]:
    """What waits in Redis and what its counters hash holds, for the whole site."""
    # Imported here: only the Redis path may import the redis package (decision 36).
    from django_pageviews.redis.buffer import DRAINED_VIEWS, status
    from django_pageviews.redis.client import get_client

    try:
        # The process's own client: the web process's other threads use it meanwhile.
        found = status(get_client(), count_raw_events=False)
    except Exception as exc:
        _failed("Redis", exc)
        return {"reachable": False, **dict.fromkeys(REDIS_FIGURES), "fallback": None}
    counters: dict[str, int] = found["counters"]
    last = counters.get("last_flush_at")
    figures = {name: found.get(_STATUS_NAMES.get(name, name)) for name in REDIS_FIGURES}
    figures["last_drain_age_seconds"] = _seconds(now - last) if last else None
    figures["drained_views"] = counters.get(DRAINED_VIEWS, 0)
    return {"reachable": True, **figures, "fallback": _fallback(counters)}


def database_figures(now: float) -> dict[str, Any]:
    """When a batch was last written (any process), and shipments kept at shutdown whose
    outcome is still unknown."""
    try:
        last = (
            ProcessedBatch.objects.order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        unsettled = UnsettledShipment.objects.count()
    except Exception as exc:
        _failed("the database", exc)
        return {"reachable": False, **dict.fromkeys(DATABASE_FIGURES)}
    age = _seconds(now - last.timestamp()) if last is not None else None
    return {"reachable": True, "last_batch_age_seconds": age, "unsettled_shipments": unsettled}


def _fallback(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    return {
        action: {r: counts.get(fallback_counter(action, r), 0) for r in FALLBACK_REASONS}
        for action in FALLBACK_ACTIONS
    }


def _failed(store: str, exc: Exception) -> None:
    stats.incr(stats.METRICS_ERROR)
    if _log.due(store):
        logger.warning("Page-view metrics: %s did not answer: %s", store, exc)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(max(0.0, value), 3)
