"""The report of bench/reads.py: one table per database and the headline lines, from
what each database's subprocess measured (bench/reads_measure.py)."""

from __future__ import annotations

from statistics import median
from typing import Any

from bench.common import markdown_table
from bench.reads_measure import ALL_DAYS, MODES, RECENT_DAYS, REPEATS, TARGETS
from bench.report import Section, spread

NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
PHASES = ("recent", "full")
DASHBOARD = "admin dashboard (page render)"


def table(result: dict[str, Any]) -> str:
    rows = []
    for name, target in TARGETS.items():
        row = [name, target]
        for mode in MODES:
            for phase in PHASES:
                row.append(spread(result[phase][mode][name], 2))
        rows.append(row)
    headers = [
        "read",
        "target ms",
        f"{RECENT_DAYS} days stored",
        f"{ALL_DAYS} days stored",
        f"{RECENT_DAYS} days, live",
        f"{ALL_DAYS} days, live",
    ]
    return markdown_table(headers, rows)


def headline(vendor: str, result: dict[str, Any]) -> str:
    made = result["made"]
    worst = max(
        max(result["full"][mode][name])
        for mode in MODES
        for name in TARGETS
        if name.startswith("get_popular")
    )
    return (
        f"reads, {vendor}, {made['daily']:,} daily rows: get_view_count(obj) "
        f"{min(result['full']['stored']['get_view_count(obj)']):.2f} ms (target <= 1), "
        f"most-viewed lists at most {worst:.1f} ms (target <= 5), admin dashboard "
        f"{median(result['full']['live'][DASHBOARD]):.0f} ms (target < 1000)"
    )


def section(results: dict[str, dict[str, Any]], description: str) -> Section:
    parts = []
    for vendor, result in results.items():
        made = result["made"]
        parts.append(
            f"**{NAMES.get(vendor, vendor)}**: "
            f"{made['daily']:,} daily rows ({made['key_daily']:,} per-key daily rows), "
            f"{made['raw_stored']:,} raw rows; made in {made['setup_s']:.0f} s + "
            f"{made['more_s']:.0f} s. ms, median (min-max) of {REPEATS}.\n\n" + table(result)
        )
    body = "\n\n".join(parts) + "\n\n" + description
    lines = [headline(vendor, result) for vendor, result in results.items()]
    return Section(title="Reads at size", body=body, headline=lines)
