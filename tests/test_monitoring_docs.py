"""The monitoring page's promises: the example alert rules name only metrics that exist,
and the JSON schema it shows is the shape ``pageviews_status --json`` prints."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from django_pageviews.metrics.collector import PageViewsCollector

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "howto" / "pageviews-alerts.yml"
PAGE = ROOT / "docs" / "howto" / "monitoring.md"
METRIC = re.compile(r"\bpageviews_[a-z_]+\b")
DURATION = re.compile(r"\d+[smhd]")
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)
OPEN_MAPS = {"events"}  # counters by name: only those that are not zero


def exported() -> set[str]:
    names = set()
    for family in PageViewsCollector().describe():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_every_alert_names_only_metrics_that_exist() -> None:
    known = exported()
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        named = set(METRIC.findall(rule["expr"]))
        assert named, rule["alert"]
        assert named <= known, (rule["alert"], named - known)
        if "for" in rule:
            assert DURATION.fullmatch(rule["for"]), rule
        assert rule["annotations"]["summary"]


def test_the_rules_cover_what_the_page_promises() -> None:
    watched = {name for rule in rules() for name in METRIC.findall(rule["expr"])}
    assert {
        "pageviews_drain_lag_seconds",
        "pageviews_redis_pending_views",
        "pageviews_buffered_views",
        "pageviews_views_total",
        "pageviews_errors_total",
    } <= watched
    assert len({rule["alert"] for rule in rules()}) == len(rules())


def shape(value: Any) -> Any:
    """Keys all the way down; a leaf is only "a number", "a string" or "null"."""
    if isinstance(value, dict):
        return {k: (None if k in OPEN_MAPS else shape(v)) for k, v in value.items()}
    if isinstance(value, bool | str):
        return type(value).__name__
    return "null" if value is None else "number"


@pytest.mark.django_db(transaction=True)
def test_the_documented_json_is_what_the_command_prints(pipeline: str) -> None:
    documented = json.loads(JSON_BLOCK.findall(PAGE.read_text())[-1])
    out = StringIO()
    call_command("pageviews_status", "--json", stdout=out)
    printed = json.loads(out.getvalue())["metrics"]
    expected, got = shape(documented), shape(printed)
    if pipeline == "in-process":
        assert got.pop("redis") == "null"
        expected.pop("redis")
    # Ages and times are null until something waits or was written.
    for section, key in [
        ("buffer", "oldest_buffered_age_seconds"),
        ("redis", "oldest_pending_age_seconds"),
        ("redis", "oldest_claim_age_seconds"),
        ("redis", "last_drain_age_seconds"),
        ("database", "last_batch_age_seconds"),
    ]:
        if section in got:
            got[section][key] = expected[section][key] = "number or null"
    assert got == expected
