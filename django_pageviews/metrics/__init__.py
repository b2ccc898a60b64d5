"""The pipeline's figures for monitoring: Prometheus metrics and ``pageviews_status --json``.

One report (figures.py) feeds both, so that they cannot disagree. ``prometheus_client``
(the ``prometheus`` extra) is needed by the collector, the view and the multiprocess files
only: figures.py and the JSON work without it.
"""
