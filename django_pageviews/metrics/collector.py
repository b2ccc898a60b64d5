"""A Prometheus collector of the pipeline's figures, read when Prometheus scrapes.

A custom collector rather than metric objects updated as views pass: the package already
counts everything (stats.py, Redis, the database), so a scrape reads those, and the
request path pays nothing for Prometheus (decision 38). Register it in a registry of
your own, or use the view (views.py) or ``pageviews_status --prometheus``::

    from prometheus_client import REGISTRY
    from django_pageviews.metrics.collector import PageViewsCollector

    REGISTRY.register(PageViewsCollector())

Names follow Prometheus's conventions: a ``pageviews_`` prefix, ``_total`` on counters,
base units in the name (``_seconds``); a figure that is unknown (null in the JSON) is left
out rather than reported as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .figures import metrics_report, multiprocess_directory

PREFIX = "pageviews_"

# (name without the prefix and _total, HELP, JSON key, label) of each counter family
# whose samples are the keys of one JSON object.
PROCESS_COUNTERS = (
    ("views", "Views by what happened to them in the process(es).", "views", "outcome"),
    (
        "not_counted",
        "Requests that reached a page and were not counted as a view, by reason.",
        "not_counted",
        "reason",
    ),
    ("errors", "Errors of the page-view pipeline, by kind (each one logged).", "errors", "kind"),
    ("events", "Other events of the page-view pipeline, by name.", "events", "event"),
)
FALLBACK_LABELS = ("action", "reason")
# Family name -> its label names (the docs' metric list).
LABELS: dict[str, tuple[str, ...]] = {
    **{PREFIX + name: (label,) for name, _, _, label in PROCESS_COUNTERS},
    PREFIX + "fallback_views": FALLBACK_LABELS,
    PREFIX + "redis_fallback_views": FALLBACK_LABELS,
}
# (name, HELP, JSON path) of each gauge; samples with a null value are left out.
GAUGES = (
    ("buffered_views", "Views in this process's in-process buffer.", ("buffer", "buffered_views")),
    (
        "buffer_oldest_age_seconds",
        "Age of the oldest view in this process's in-process buffer.",
        ("buffer", "oldest_buffered_age_seconds"),
    ),
    (
        "drain_lag_seconds",
        "Age of the oldest view not yet written to the database (0: none waits).",
        ("drain_lag_seconds",),
    ),
    ("redis_pending_views", "Views in Redis not yet written.", ("redis", "pending_views")),
    (
        "redis_pending_count_fields",
        "Count fields (day and page) pending in Redis.",
        ("redis", "pending_count_fields"),
    ),
    (
        "redis_claimed_batches",
        "Batches claimed by a drain, not yet acknowledged.",
        ("redis", "claimed_batches"),
    ),
    (
        "redis_set_aside_batches",
        "Records set aside in Redis (pageviews_flush --retry-aside).",
        ("redis", "set_aside_batches"),
    ),
    (
        "redis_restored_groups",
        "Groups parked from a Redis restored from an older snapshot.",
        ("redis", "restored_groups"),
    ),
    (
        "redis_oldest_pending_age_seconds",
        "Age of the oldest view pending in Redis.",
        ("redis", "oldest_pending_age_seconds"),
    ),
    (
        "redis_oldest_claim_age_seconds",
        "Age of the oldest claim not yet acknowledged.",
        ("redis", "oldest_claim_age_seconds"),
    ),
    (
        "redis_last_drain_age_seconds",
        "Seconds since a drain last wrote views from Redis.",
        ("redis", "last_drain_age_seconds"),
    ),
    (
        "last_batch_age_seconds",
        "Seconds since a batch of views was last written to the database (any process).",
        ("database", "last_batch_age_seconds"),
    ),
    (
        "unsettled_shipments",
        "Shipments kept in the database at shutdown whose outcome is unknown.",
        ("database", "unsettled_shipments"),
    ),
)


class PageViewsCollector(Collector):
    """The figures of ``metrics.figures.metrics_report``, as metric families.

    ``multiprocess_dir``: sum the process counters of every process from
    prometheus_client's files there; by default the ``PROMETHEUS_MULTIPROC_DIR`` of the
    environment, if any (else this process's counters). ``process_counters=False`` leaves
    the process counters out (a command's own are not the site's)."""

    def __init__(self, multiprocess_dir: str | None = None, process_counters: bool = True) -> None:
        self.multiprocess_dir = multiprocess_dir or multiprocess_directory()
        self.process_counters = process_counters

    def describe(self) -> Iterable[Metric]:
        # Names only, from a report of nothing: registering reads neither Redis nor the
        # database (a registry with auto_describe would otherwise collect).
        return list(families(SKELETON, self.process_counters))

    def collect(self) -> Iterable[Metric]:
        report = metrics_report(self.multiprocess_dir)
        return list(families(report, self.process_counters))


# A report with every family and no value (describe).
SKELETON: dict[str, Any] = {
    "buffer": {},
    "redis": {"reachable": None, "fallback": {}},
    "database": {"reachable": None},
}


def families(report: dict[str, Any], process_counters: bool = True) -> Iterator[Metric]:
    """The metric families of ``report``; a null figure has no sample."""
    if process_counters:
        for name, text, key, label in PROCESS_COUNTERS:
            counter = CounterMetricFamily(PREFIX + name, text, labels=[label])
            for value, n in report.get(key, {}).items():
                counter.add_metric([value], n)
            yield counter
        yield _fallback(
            "fallback_views",
            "Views Redis could not take, by action and reason (process counters).",
            report.get("fallback", {}),
        )
    redis = report["redis"]
    for store, shown in (("redis", "Redis"), ("database", "The database")):
        if report[store] is not None:
            family = GaugeMetricFamily(
                PREFIX + store + "_up", f"{shown} answered this scrape: 1, or 0 if not."
            )
            if report[store]["reachable"] is not None:
                family.add_metric([], 1 if report[store]["reachable"] else 0)
            yield family
    for name, text, path in GAUGES:
        section = report.get(path[0]) if len(path) == 2 else report
        if section is None:
            continue  # no Redis on the in-process path
        family = GaugeMetricFamily(PREFIX + name, text)
        if (value := section.get(path[-1])) is not None:
            family.add_metric([], value)
        yield family
    if redis is not None:
        drained = CounterMetricFamily(
            PREFIX + "redis_drained_views", "Views drained from Redis, by every worker."
        )
        if redis.get("drained_views") is not None:
            drained.add_metric([], redis["drained_views"])
        yield drained
        yield _fallback(
            "redis_fallback_views",
            "Views Redis could not take, as every process reported them to Redis.",
            redis["fallback"] or {},
        )


def _fallback(name: str, text: str, counts: dict[str, dict[str, int]]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, text, labels=FALLBACK_LABELS)
    for action, by_reason in counts.items():
        for reason, n in by_reason.items():
            family.add_metric([action, reason], n)
    return family


def exposition(collector: PageViewsCollector | None = None) -> bytes:
    """The text a scrape gets: the collector's families in a registry of their own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector or PageViewsCollector())
    return generate_latest(registry)
