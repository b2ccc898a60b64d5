"""The report of bench/reads.py: one table per database and the headline lines, from
what each database's subprocess measured (bench/reads_measure.py)."""

from __future__ import annotations

from statistics import median
from typing import Any

from bench.common import ROOT, markdown_table
from bench.reads_measure import (
    ALL_DAYS,
    MODES,
    ORIGINAL_CAP_S,
    ORIGINAL_REPEATS,
    RECENT_DAYS,
    REPEATS,
    TARGETS,
)
from bench.reads_profile import PROFILE
from bench.report import Section, spread

NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
PHASES = ("recent", "full")
DASHBOARD = "admin dashboard (page render)"
PROFILES = ("profiles/reads-live-before.txt", PROFILE)


def table(result: dict[str, Any]) -> str:
    rows = []
    for name, target in TARGETS.items():
        row = [name, target]
        for mode in MODES:
            for phase in PHASES:
                row.append(spread(result[phase][mode][name], 2))
        row.append(_original(result["original"].get(name)))
        rows.append(row)
    headers = [
        "read",
        "target ms",
        f"{RECENT_DAYS} days stored",
        f"{ALL_DAYS} days stored",
        f"{RECENT_DAYS} days, live",
        f"{ALL_DAYS} days, live",
        f"0.2.6-like, {ALL_DAYS} days",
    ]
    return markdown_table(headers, rows)


def _original(times: list[float] | None) -> str:
    """A 0.2.6-like read's cell: its spread and how many times it was timed ("-": a read
    0.2.6 did not have)."""
    if times is None:
        return "-"
    return f"{spread(times, 2)} n={len(times)}"


def _versus(ours: list[float], original: list[float]) -> str:
    """``0.2.6-like 240 ms, 220x ours``: the original's median and its ratio to ours."""
    theirs = median(original)
    return f"0.2.6-like {_ms(theirs)} ms, {_times(theirs / median(ours))} ours"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def _times(ratio: float) -> str:
    """A ratio of the original's time to ours: ``220x``, ``3.4x``, ``0.6x`` (ours slower)."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def headline(vendor: str, result: dict[str, Any]) -> str:
    """Each target with our medians at full history, stored and live, and, in the same run,
    the 0.2.6-like read's median and its ratio to our stored median."""
    made, full, original = result["made"], result["full"], result["original"]
    lists = [name for name in TARGETS if name.startswith("get_popular")]
    worst = {mode: max(median(full[mode][name]) for name in lists) for mode in MODES}
    theirs = [median(original[name]) for name in lists]
    least = min(median(original[name]) / median(full["stored"][name]) for name in lists)

    def ours(name: str) -> str:
        stored, live = (median(full[mode][name]) for mode in MODES)
        return f"{stored:.2f} ms stored, {live:.2f} live"

    one, many = "get_view_count(obj)", "get_view_counts_for_objects(50)"
    return (
        f"reads, {vendor}, {made['daily']:,} daily rows, {made['raw_stored']:,} raw rows, "
        f"medians: {one} {ours(one)} (target <= 1; "
        f"{_versus(full['stored'][one], original[one])}), "
        f"{many} {ours(many)} (target <= 3; "
        f"{_versus(full['stored'][many], original[many])}), "
        f"most-viewed lists at most {worst['stored']:.1f} ms stored, {worst['live']:.1f} live "
        f"(target <= 5; 0.2.6-like {_ms(min(theirs))}-{_ms(max(theirs))} ms, each at least "
        f"{_times(least)} ours), admin dashboard {median(full['live'][DASHBOARD]):.0f} ms "
        "(target < 1000; 0.2.6 had none)"
    )


def section(results: dict[str, dict[str, Any]], description: str) -> Section:
    parts = []
    for vendor, result in results.items():
        made = result["made"]
        parts.append(
            f"**{NAMES.get(vendor, vendor)}**: "
            f"{made['daily']:,} daily rows ({made['key_daily']:,} per-key daily rows), "
            f"{made['raw_stored']:,} raw rows; made in {made['setup_s']:.0f} s + "
            f"{made['more_s']:.0f} s. ms, median (min-max) of {REPEATS}; 0.2.6-like: of n "
            f"calls, after one untimed call: {ORIGINAL_REPEATS}, fewer once a read's timed "
            f"calls had taken {ORIGINAL_CAP_S:.0f} s (`--quick`: one call, not warmed)."
            "\n\n" + table(result)
        )
    body = "\n\n".join(parts) + "\n\n" + description
    files = [name for name in PROFILES if (ROOT / "docs" / name).exists()]
    if files:
        body += (
            "\n\nWhere a live read's time goes (Redis, round trips, SQL, Python), before "
            "and after decision 44: "
            + " and ".join(f"[{name}]({name})" for name in files)
            + " (`bench/reads_profile.py`)."
        )
    lines = [headline(vendor, result) for vendor, result in results.items()]
    return Section(title="Reads at size", body=body, headline=lines, files=files)
