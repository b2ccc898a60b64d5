"""The pipeline's state, as ``pageviews_status`` prints it and the admin dashboard shows it.

One function gathers it so that the command and the dashboard can never disagree: what is
buffered or pending in Redis, what is set aside, when a batch was last written, what was not
counted today, and what this process's counters say. Every read is a handful of Redis
commands and indexed single-row queries: nothing here grows with the number of views.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models import Count, Sum

from . import stats
from .buffer import buffer
from .conf import conf
from .events import current_day
from .models import ProcessedBatch, SkippedDaily, UnsettledShipment
from .schedules import BEAT_SCHEDULE, PROCESS_TASK

# A drain is due every this many seconds (the beat schedule of the user's guide): views
# older than STALL_FACTOR intervals mean that no worker or no beat is draining.
STALL_FACTOR = 2


class RedisUnreachable(Exception):
    """Redis did not answer the status read (async mode)."""


def drain_interval() -> float:
    """Seconds between drains as the documented beat schedule sets them."""
    for entry in BEAT_SCHEDULE.values():
        if entry["task"] == PROCESS_TASK:
            return float(entry["schedule"])
    return 60.0  # pragma: no cover - the schedule always names the task


def pipeline_report() -> dict[str, Any]:
    """The report ``pageviews_status`` prints; RedisUnreachable if Redis does not answer."""
    report: dict[str, Any] = {"async_processing": conf.ASYNC_PROCESSING}
    if conf.ASYNC_PROCESSING:
        from .redis.aside import aside_status
        from .redis.buffer import status
        from .redis.client import get_client

        # The process's own client: the dashboard runs in a web process whose other
        # threads use it at the same time (closing it would cut their connections).
        try:
            report["redis"] = status(get_client())
            report["set_aside"] = aside_status(get_client())
        except Exception as exc:
            raise RedisUnreachable(str(exc)) from exc
    last = ProcessedBatch.objects.order_by("-created_at").first()
    report["last_batch_written_at"] = last.created_at.isoformat() if last else None
    today = SkippedDaily.objects.filter(day=current_day())
    report["not_counted_today"] = dict(today.values_list("reason", "requests"))
    unsettled = UnsettledShipment.objects.aggregate(n=Count("pk"), views=Sum("views"))
    report["unsettled_shipments"] = {
        "shipments": unsettled["n"],
        "views": unsettled["views"] or 0,
    }
    report["this_process"] = {"buffered": buffer.pending_count(), **stats.snapshot()}
    return report


def draining(report: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Whether views leave the buffer, from a ``pipeline_report``.

    In async mode the beat schedules a drain and a worker runs it; neither answers a
    question cheaply (a Celery ping is a broker round trip that waits its whole timeout
    when no worker is up), so both are judged by their effect: views waiting longer than
    ``STALL_FACTOR`` drain intervals mean that one of them is not running. ``alive`` is
    None when nothing waits (nothing to judge by); the last drain's age is shown either way.
    """
    now = time.time() if now is None else now
    if not report["async_processing"]:
        # The in-process writer thread flushes by size and age; no worker, no beat.
        return {"mode": "in-process", "alive": True, "last_drain_age_seconds": None}
    redis = report["redis"]
    last_at = redis["counters"].get("last_flush_at")
    oldest = redis["oldest_pending_age_seconds"]
    limit = STALL_FACTOR * drain_interval()
    alive = None if not redis["pending_views"] or oldest is None else oldest <= limit
    return {
        "mode": "redis",
        "alive": alive,
        "last_drain_age_seconds": round(now - last_at, 1) if last_at else None,
        "stall_after_seconds": limit,
    }
