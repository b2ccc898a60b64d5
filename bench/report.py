"""The contract between ``python -m bench`` and its scenarios, and the document it writes.

Each scenario module under ``bench/`` exposes ``run(quick: bool) -> Section``; the command
runs them, then writes docs/benchmarks.md from the sections it got back (``render``), so
every number in that file comes from one run of one command.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.common import markdown_table

OK = "ok"
FAILED = "failed"
MISSING = "not available"


@dataclass
class Section:
    """One scenario's part of docs/benchmarks.md.

    ``body``: Markdown (tables first, then what they show), without the title.
    ``headline``: one-line results for the summary at the top (``"drain, PostgreSQL, raw
    rows: 104,000 views/s (target >= 100,000)"``). ``files``: artefacts written next to
    the report (profiles), relative to docs/.
    """

    title: str
    body: str
    headline: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What became of one scenario in this run: its section, or why there is none."""

    name: str
    status: str  # OK, FAILED or MISSING
    seconds: float = 0.0
    section: Section | None = None
    error: str = ""

    @property
    def title(self) -> str:
        return self.section.title if self.section is not None else f"`{self.name}`"


@dataclass
class Facts:
    """Where and on what the numbers were measured (bench/machine.py collects them)."""

    date: str
    commit: str
    dirty: bool
    mode: str  # "full" or "quick"
    versions: list[tuple[str, str]]
    machine: list[tuple[str, str]]
    seconds: float = 0.0


def spread(values: Sequence[float], digits: int = 0) -> str:
    """``median (min-max)`` of repeated measurements, as the tables show them (a single
    measurement, of a quick run, alone)."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def _anchor(number: int, title: str) -> str:
    text = f"{number}. {title}".lower()
    kept = "".join(c for c in text if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _summary(outcomes: Sequence[Outcome]) -> list[str]:
    lines = ["## Summary", ""]
    for number, outcome in enumerate(outcomes, 1):
        link = f"[{number}. {outcome.title}](#{_anchor(number, outcome.title)})"
        if outcome.status == OK and outcome.section is not None:
            lines.append(f"- {link} ({outcome.seconds:.0f} s)")
            lines += [f"  - {line}" for line in outcome.section.headline or ["(no headline)"]]
        elif outcome.status == MISSING:
            lines.append(f"- {link}: **not available** (no module `bench/{outcome.name}.py`)")
        else:
            first = outcome.error.strip().splitlines()[-1:] or ["unknown error"]
            lines.append(f"- {link}: **FAILED** after {outcome.seconds:.0f} s: {first[0]}")
    return lines


def _section(number: int, outcome: Outcome) -> list[str]:
    lines = [f"## {number}. {outcome.title}", ""]
    if outcome.status == OK and outcome.section is not None:
        lines += [f"`bench/{outcome.name}.py`, {outcome.seconds:.0f} s.", ""]
        lines.append(outcome.section.body.strip())
    elif outcome.status == MISSING:
        lines.append(f"Not available: this checkout has no `bench/{outcome.name}.py`.")
    else:
        lines += [f"**FAILED** after {outcome.seconds:.0f} s:", "", "```", outcome.error.strip()]
        lines.append("```")
    return [*lines, ""]


def _profiles(outcomes: Sequence[Outcome]) -> list[str]:
    lines = ["## Profiles", ""]
    files = [(o.name, name) for o in outcomes if o.section is not None for name in o.section.files]
    if not files:
        return [*lines, "None were saved in this run.", ""]
    lines += [f"- [{name}]({name}) (`{scenario}`)" for scenario, name in files]
    return [*lines, ""]


def render(facts: Facts, outcomes: Sequence[Outcome]) -> str:
    """docs/benchmarks.md: title, date, commit, versions, machine, summary, the sections,
    the profiles. Every table in it is built here or by a scenario, none by hand."""
    failed = [o.name for o in outcomes if o.status == FAILED]
    missing = [o.name for o in outcomes if o.status == MISSING]
    dirty = " (**dirty**: uncommitted changes in the working tree)" if facts.dirty else ""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench"
        + (" --quick" if facts.mode == "quick" else "")
        + "` (bench/README.md); do not edit by hand, run the command again.",
        "",
        f"- Date: {facts.date}",
        f"- Commit: `{facts.commit}`{dirty}",
        f"- Run: {facts.mode}, {len(outcomes)} scenarios in {facts.seconds:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; not available: {', '.join(missing)}" if missing else ""),
        "",
        "## Versions",
        "",
        markdown_table(["component", "version"], facts.versions),
        "",
        "## Machine",
        "",
        markdown_table(["", ""], facts.machine),
        "",
        *_summary(outcomes),
        "",
    ]
    for number, outcome in enumerate(outcomes, 1):
        lines += _section(number, outcome)
    lines += _profiles(outcomes)
    return "\n".join(lines).rstrip() + "\n"


README_START = "<!-- python -m bench: headline figures -->"
README_END = "<!-- end of the figures python -m bench wrote -->"


def readme_headlines(text: str, facts: Facts, outcomes: Sequence[Outcome]) -> str:
    """``text`` (README.md) with the block between the two markers replaced by the
    headline lines of this run: the README quotes the figures without anyone copying
    them. Unchanged when the markers are absent."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return text
    lines = [
        README_START,
        "",
        f"Measured by `python -m bench` on {facts.date} at `{facts.commit}`:",
        "",
    ]
    for outcome in outcomes:
        if outcome.status == OK and outcome.section is not None:
            lines += [f"- {line}" for line in outcome.section.headline]
    return text[:start] + "\n".join([*lines, "", ""]) + text[end:]
