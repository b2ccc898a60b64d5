"""``python -m bench`` (bench/__main__.py) and the document it writes (bench/report.py).

These test the command, not the product: the scenarios are fake modules written to a
temporary package, so the test is fast and asserts nothing about time.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

import pytest

from bench import prepare
from bench.__main__ import SCENARIOS, main
from bench.common import ROOT
from bench.machine import dirty
from bench.report import (
    FAILED,
    MISSING,
    OK,
    README_END,
    README_START,
    Facts,
    Outcome,
    Section,
    readme_headlines,
    render,
    spread,
)

FACTS = Facts(
    date="2026-11-30 03:00 UTC",
    commit="abc1234",
    dirty=True,
    mode="quick",
    versions=[("Python", "3.11.7"), ("Django", "5.2.19")],
    machine=[("cores (nproc)", "2")],
    seconds=12.0,
)
GOOD = Section(
    title="Drain rate",
    body="| a | b |\n|---|---:|\n| 1 | 2 |\n\nWhat it shows.",
    headline=["drain, PostgreSQL: 104,000 views/s (target >= 100,000)"],
    files=["profiles/drain.txt"],
)


def headings(document: str) -> list[str]:
    return re.findall(r"^## (.+)$", document, flags=re.MULTILINE)


def test_document_structure() -> None:
    outcomes = [
        Outcome("drain", OK, 3.0, GOOD),
        Outcome("reads", MISSING),
        Outcome("memory", FAILED, 1.0, error="Traceback ...\nRuntimeError: no redis"),
    ]
    document = render(FACTS, outcomes)

    assert document.startswith("# Benchmarks\n")
    assert headings(document) == [
        "Versions",
        "Machine",
        "Summary",
        "1. Drain rate",
        "2. `reads`",
        "3. `memory`",
        "Profiles",
    ]
    assert "- Date: 2026-11-30 03:00 UTC" in document
    assert "`abc1234` (**dirty**" in document
    assert "| Django | 5.2.19 |" in document
    assert "| cores (nproc) | 2 |" in document
    summary = document.split("## Summary", 1)[1].split("## 1.", 1)[0]
    assert "  - drain, PostgreSQL: 104,000 views/s (target >= 100,000)" in summary
    assert "[1. Drain rate](#1-drain-rate)" in summary
    assert "**not available**" in summary
    assert "**FAILED** after 1 s: RuntimeError: no redis" in summary
    assert "What it shows." in document.split("## 1. Drain rate", 1)[1]
    assert "RuntimeError: no redis" in document.split("## 3. `memory`", 1)[1]
    assert "- [profiles/drain.txt](profiles/drain.txt) (`drain`)" in document
    assert "failed: memory; not available: reads" in document


def test_clean_commit_and_no_profiles() -> None:
    facts = Facts(**{**FACTS.__dict__, "dirty": False, "mode": "full"})
    document = render(facts, [Outcome("drain", OK, 3.0, Section("Drain rate", "body"))])

    assert "dirty" not in document
    assert "python -m bench`" in document  # the full command, not --quick
    assert "None were saved in this run." in document
    assert "  - (no headline)" in document


def test_dirty_ignores_the_command_outputs() -> None:
    assert not dirty(" M docs/benchmarks.md\n?? docs/profiles/drain.txt\n")
    assert dirty(" M docs/benchmarks.md\n M bench/memory.py\n")
    assert dirty("?? bench/new_scenario.py\n")
    assert not dirty("")


def test_spread() -> None:
    assert spread([3.0, 1.0, 2.0]) == "2 (1-3)"
    assert spread([1000.0, 1500.0, 1250.0], 1) == "1,250.0 (1,000.0-1,500.0)"
    assert spread([2.5], 1) == "2.5"


FAKES = {
    "__init__": "",
    "fine": """
        from bench.report import Section

        def run(quick: bool) -> Section:
            return Section("Fine", f"quick={quick}", headline=["fine: 1 view/s"])
    """,
    "broken": """
        def run(quick: bool):
            raise RuntimeError("the fake scenario fails")
    """,
    "exits": """
        def run(quick: bool):
            raise SystemExit("gave up")
    """,
    "wrong": """
        def run(quick: bool):
            return "not a section"
    """,
}


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "fakebench"
    package.mkdir()
    for name, code in FAKES.items():
        (package / f"{name}.py").write_text(textwrap.dedent(code))
    monkeypatch.syspath_prepend(str(tmp_path))  # for find_spec here
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # for the scenarios' processes
    return tmp_path


def test_failing_scenario_is_reported_and_fails_the_command(fakes: Path) -> None:
    out = fakes / "benchmarks.md"
    names = ("fine", "broken", "absent", "exits", "wrong")

    status = main(["--quick", "--no-setup", "--out", str(out)], names, "fakebench")

    assert status == 1
    document = out.read_text()
    assert headings(document)[3:8] == [
        "1. Fine",
        "2. `broken`",
        "3. `absent`",
        "4. `exits`",
        "5. `wrong`",
    ]
    assert "quick=True" in document
    assert "  - fine: 1 view/s" in document
    assert "RuntimeError: the fake scenario fails" in document
    assert "Not available: this checkout has no `bench/absent.py`." in document
    assert "SystemExit: gave up" in document
    assert "TypeError: fakebench.wrong.run returned str, not a Section" in document
    assert "failed: broken, exits, wrong; not available: absent" in document


def test_only_runs_the_named_scenarios(fakes: Path) -> None:
    out = fakes / "benchmarks.md"

    status = main(
        ["--no-setup", "--only", "fine", "--out", str(out)], ("fine", "broken"), "fakebench"
    )

    assert status == 0
    document = out.read_text()
    assert "quick=False" in document
    assert "broken" not in document


def test_missing_bench_extra_stops_with_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(prepare, "missing_bench_extra", lambda: ["ua-parser[regex]>=1.0"])
    out = tmp_path / "benchmarks.md"

    assert main(["--out", str(out)]) == 2

    err = capsys.readouterr().err
    assert "the bench extra is not installed (ua-parser[regex]>=1.0)" in err
    assert '-m pip install -e "' in err and '[bench]"' in err
    assert not out.exists()


def test_bench_extra_is_read_from_pyproject() -> None:
    """What is missing is among the extra's requirements (all of it or none, in CI or not)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]["bench"]

    assert set(prepare.missing_bench_extra()) <= {r.split(";")[0].strip() for r in declared}


def test_only_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--only", "nonesuch"])
    assert exited.value.code == 2
    assert "unknown scenario(s): nonesuch" in capsys.readouterr().err


def test_every_scenario_has_its_module() -> None:
    """A scenario missing from the checkout would only be reported "not available"."""
    for name in SCENARIOS:
        source = ROOT / "bench" / f"{name}.py"
        assert re.search(r"^def run\(quick: bool\) -> Section:", source.read_text(), re.M), name


def test_readme_block_holds_the_headlines_of_the_run() -> None:
    text = f"intro\n{README_START}\nold figure\n{README_END}\noutro\n"
    outcomes = [Outcome("drain", OK, 3.0, GOOD), Outcome("reads", MISSING)]

    updated = readme_headlines(text, FACTS, outcomes)

    assert "old figure" not in updated
    assert updated.startswith("intro\n") and updated.endswith(f"{README_END}\noutro\n")
    assert f"- {GOOD.headline[0]}\n" in updated
    assert FACTS.commit in updated
    assert readme_headlines(updated, FACTS, outcomes) == updated  # stable
    assert readme_headlines("no markers\n", FACTS, outcomes) == "no markers\n"


def test_the_project_readme_has_the_markers() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.index(README_START) < text.index(README_END)
