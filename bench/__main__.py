"""``python -m bench``: set up, run every scenario, write docs/benchmarks.md.

    python -m bench [--quick] [--only name[,name]] [--out docs/benchmarks.md]

Each scenario runs in a process of its own (``--child``): one scenario's Django settings,
threads or crash cannot change the next one's numbers, and a scenario that fails is
reported as failed in the document while the others still run. The exit status is 1 when
any scenario failed. See bench/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench import machine, prepare
from bench.common import ROOT
from bench.report import FAILED, MISSING, OK, Facts, Outcome, Section, readme_headlines, render

# The scenarios, in the order of the document.
SCENARIOS = (
    "throughput",
    "request_cost",
    "drain",
    "redis_memory",
    "reads",
    "memory",
    "scaling",
    "sqlite_wal",
    "scale_out",
)
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
# A scenario still running after this long is stopped and reported as failed.
TIMEOUT = {"quick": 300.0, "full": 1800.0}


def child(module: str, quick: bool, result: Path) -> int:
    """In the scenario's own process: run it, write its Section (or its error) as JSON."""
    try:
        section = importlib.import_module(module).run(quick)
        if not isinstance(section, Section):
            raise TypeError(f"{module}.run returned {type(section).__name__}, not a Section")
        result.write_text(json.dumps({"section": asdict(section)}))
        return 0
    except BaseException as exc:  # SystemExit too: the scenario stopped, say why
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.write_text(json.dumps({"error": traceback.format_exc()}))
        return 1


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_one(package: str, name: str, quick: bool) -> Outcome:
    """Run scenario ``name`` in a child process; its Outcome whatever happens to it."""
    module = f"{package}.{name}"
    if not available(module):
        return Outcome(name, MISSING)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result = Path(tmp) / "result.json"
        args = [sys.executable, "-m", "bench", "--child", module, "--result", str(result)]
        process = subprocess.Popen(
            [*args, *(["--quick"] if quick else [])], cwd=ROOT, start_new_session=True
        )
        try:
            code = process.wait(timeout=TIMEOUT["quick" if quick else "full"])
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its servers and workers too
            process.wait()
            return Outcome(name, FAILED, time.monotonic() - started, error="timed out")
        finally:
            _stop_group(process.pid)
        seconds = time.monotonic() - started
        data = json.loads(result.read_text()) if result.exists() else {}
    if "section" in data and code == 0:
        return Outcome(name, OK, seconds, Section(**data["section"]))
    error = data.get("error") or f"the scenario's process exited with status {code}"
    return Outcome(name, FAILED, seconds, error=error)


def _stop_group(pgid: int) -> None:
    """Servers a scenario left behind would load the next one's machine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def parse(argv: Sequence[str] | None, scenarios: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under 2 minutes)")
    parser.add_argument("--only", help=f"comma-separated scenarios among: {', '.join(scenarios)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the document to write")
    parser.add_argument("--no-setup", action="store_true", help="skip wrk/PostgreSQL/Redis set-up")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        args.only = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(args.only) - set(scenarios))
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    return args


def main(
    argv: Sequence[str] | None = None,
    scenarios: Sequence[str] = SCENARIOS,
    package: str = "bench",
) -> int:
    args = parse(argv, scenarios)
    if args.child:
        return child(args.child, args.quick, args.result)
    if not args.no_setup:
        missing = prepare.missing_bench_extra()
        if missing:
            prepare.log(f"the bench extra is not installed ({', '.join(missing)}); run:")
            prepare.log(f"    {prepare.INSTALL_EXTRA}")
            return 2
        prepare.ensure_wrk()
        prepare.ensure_postgres()
        prepare.ensure_mysql()
        prepare.start_redis()
    head, dirty = machine.commit()
    facts = Facts(
        date=machine.now(),
        commit=head,
        dirty=dirty,
        mode="quick" if args.quick else "full",
        versions=machine.versions(),
        machine=machine.machine(),
    )
    names = [name for name in scenarios if not args.only or name in args.only]
    outcomes = []
    started = time.monotonic()
    for number, name in enumerate(names, 1):
        prepare.log(f"[{number}/{len(names)}] {name} ...")
        outcome = run_one(package, name, args.quick)
        prepare.log(f"[{number}/{len(names)}] {name}: {outcome.status} ({outcome.seconds:.0f} s)")
        outcomes.append(outcome)
    facts.seconds = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(facts, outcomes))
    prepare.log(f"wrote {args.out}")
    if args.out == DEFAULT_OUT and not args.quick and not args.only:  # a complete run
        readme = ROOT / "README.md"
        readme.write_text(readme_headlines(readme.read_text(), facts, outcomes))
        prepare.log(f"updated the headline figures in {readme}")
    return 1 if any(o.status == FAILED for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
