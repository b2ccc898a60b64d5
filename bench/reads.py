"""Reads at size: counts and most-viewed lists over a long history, live and not.

    python -m bench.reads [--quick]

10,000 articles viewed every day with Zipf-like popularity (article i: ~100,000 / i views a
day), stored as the drain stores them (daily rows, per-key rows), plus 10,000,000 raw
rows (PostgreSQL; SQLite: 1,000,000) over 100 days, Zipf-like too, made by SQL in the
database. First the last 10 days are stored, and every read is timed; then 90 older days
are added (1,000,000 daily rows) and the reads are timed again: a read that does not grow
with history takes the same time. "live": the reads run with Redis (async mode) holding
views not yet written (200,000 distinct pending pages, quick: 2,000: articles and new
URLs, 1-5 views each), which they count too.
``--quick``: 1,000 articles, 200,000 raw rows (SQLite: 10,000).

Each read is timed 7 times, the reads interleaved; the tables give the median and the
range (min-max), in ms, in this process (in-process Django, no HTTP). Each database runs
in a subprocess of its own (its own Django settings). "0.2.6-like": in the same run,
after the 100 days, the queries the original 0.2.6 ran for the reads it had
(bench/reads_original.py: every count a COUNT(*) and every list a GROUP BY over the raw
rows; no live counts, no dashboard), each called once untimed, then timed 3 times, or
fewer once its timed calls have taken 4 s (a GROUP BY over 10,000,000 rows takes
seconds; ``--quick``: one call, not warmed): median (min-max) of n calls. The summary
lines give the original's median and its ratio to ours (medians, stored, 100 days).

The modules: reads_stored.py, reads_raw.py and reads_pending.py make the data,
reads_measure.py times the reads (in the subprocess), reads_original.py has the
0.2.6-like reads, reads_report.py writes the tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import POSTGRES_URL, PYTHON, ROOT, subprocess_env  # noqa: E402
from bench.report import Section  # noqa: E402

VENDORS = ("postgresql", "sqlite")


def run_case(vendor: str, quick: bool) -> dict[str, Any]:
    """One database's measurements, from a subprocess with its own settings."""
    if vendor == "postgresql":
        url = POSTGRES_URL
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="pageviews-reads-")
        url = f"sqlite:///{tmp}/reads.sqlite3"
    args = [PYTHON, "-m", "bench.reads", "--case", vendor] + (["--quick"] if quick else [])
    env = subprocess_env(BENCH_DATABASE_URL=url, BENCH_TRACKING="redis")
    try:
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    finally:
        if tmp is not None:
            for f in Path(tmp).iterdir():
                f.unlink()
            os.rmdir(tmp)
    if done.returncode != 0:
        raise SystemExit(f"bench.reads {vendor} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> Section:
    from bench.reads_report import section

    results = {vendor: run_case(vendor, quick) for vendor in VENDORS}
    return section(results, (__doc__ or "").split("\n\n", 3)[2])


def main() -> None:
    quick = "--quick" in sys.argv
    if "--case" in sys.argv:
        from bench.reads_measure import case

        vendor = sys.argv[sys.argv.index("--case") + 1]
        print(json.dumps(case(vendor, quick)))
        return
    section = run(quick)
    print(f"## {section.title}\n\n{section.body}\n")
    print("\n".join(section.headline))


if __name__ == "__main__":
    main()
