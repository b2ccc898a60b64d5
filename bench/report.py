"""The contract between ``python -m bench`` and its scenarios.

Each scenario module under ``bench/`` exposes ``run(quick: bool) -> Section``; the command
runs them, then writes docs/benchmarks.md from the sections it got back, so every number
in that file comes from one run of one command.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


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


def spread(values: Sequence[float], digits: int = 0) -> str:
    """``median (min-max)`` of repeated measurements, as the tables show them."""
    med = statistics.median(values)
    return f"{med:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"
