"""Scraping the metrics in tests: the exposition text, parsed by prometheus_client's own
parser, as a Prometheus server reads it."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from tests.processes import ROOT

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Sample name and labels -> value."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample's value, None when the scrape did not have it."""
    return samples.get((name, tuple(sorted(labels.items()))))


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a counter grew between two scrapes (the process counters are never
    reset: other tests counted before this one)."""
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def help_texts(text: str) -> dict[str, str]:
    return {f.name: f.documentation for f in text_string_to_metric_families(text)}


def command_scrape(env: dict[str, str]) -> Samples:
    """``manage.py pageviews_status --prometheus`` in a process of its own (as cron runs
    it for node-exporter), parsed; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "manage.py", "pageviews_status", "--prometheus"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return parse(done.stdout)
