"""How the package's process counters (stats.py) are grouped for operators.

The counters are named by what the code counts; operators ask other questions (how many
views were recorded, lost, not counted and why, which errors): each counter is put under
one of those here, once, for the JSON report and the Prometheus families alike. A counter
named nowhere below is still reported, under ``events`` (none is ever left out).
"""

from __future__ import annotations

from django_pageviews import stats

# What happened to views: JSON ``views`` keys, the ``outcome`` label.
VIEW_OUTCOMES = {
    "recorded": stats.TRACKED,
    "shipped": stats.SHIPPED,
    "written": stats.WRITTEN,
    "dropped": stats.DROPPED,
}
SPILLED = "spilled"  # the sum of the fallback's spilled counters

# Views Redis could not take (redis/shipping.py's Fallback names them action_reason).
FALLBACK_ACTIONS = ("spilled", "dropped")
FALLBACK_REASONS = ("redis_down", "overflow")

# Requests that reached a page and were not counted as views, by reason.
NOT_COUNTED = (
    stats.SKIP_EXCLUDED,
    stats.SKIP_BOT,
    stats.SKIP_PREFETCH,
    stats.SKIP_DNT,
    stats.SKIP_GPC,
    stats.SKIP_THROTTLED,
    stats.SKIP_INVALID,
    stats.SKIP_ERROR,
    stats.BEACON_REFUSED,
    stats.SKIP_METHOD,
    stats.SKIP_STATUS,
)

ERRORS = (
    stats.FLUSH_ERROR,
    stats.REDIS_ERROR,
    stats.EARLY_FLUSH_ERROR,
    stats.READ_ERROR,
    stats.THROTTLE_ERROR,
    stats.SALT_ERROR,
    stats.METRICS_ERROR,
)


def fallback_counter(action: str, reason: str) -> str:
    """The counter the fallback keeps for ``action`` and ``reason`` (``spilled_overflow``)."""
    return f"{action}_{reason}"


GROUPED = frozenset(
    [
        *VIEW_OUTCOMES.values(),
        *NOT_COUNTED,
        *ERRORS,
        *(fallback_counter(a, r) for a in FALLBACK_ACTIONS for r in FALLBACK_REASONS),
    ]
)
