"""Project-level promises: migrations match the models, the test command says what it
needs first. (What the docs say about settings and checks: tests/test_docs.py.)"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def version_matrix() -> dict[str, object]:
    """noxfile.py's PYTHONS and DJANGOS, read without importing it (importing it changes
    PATH, for nox)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    return {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in ("PYTHONS", "DJANGOS")
    }


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_the_test_command_says_what_mysql_needs_before_any_set_up(tmp_path: Path) -> None:
    """With a MySQL URL and no way to build mysqlclient (no pkg-config, no compiler, no
    driver installed), scripts/test.sh stops at once with the packages to install, before
    it creates a virtualenv or runs a test."""
    (tmp_path / "scripts").mkdir()
    for name in ("test.sh", "_env.sh"):
        (tmp_path / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    bin_dir = tmp_path / "bin"  # only what the script needs before the check
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")
    done = subprocess.run(
        ["/bin/bash", str(tmp_path / "scripts" / "test.sh")],
        env={"PATH": str(bin_dir), "TEST_DATABASE_URLS": "mysql://root@127.0.0.1:3306/test"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "sudo apt-get install gcc pkg-config libmariadb-dev" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_classifiers_claim_what_the_version_matrix_tests() -> None:
    """pyproject.toml names as supported exactly the Pythons and Django series that
    noxfile.py runs the suite on, and its lower bounds are the oldest of them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    matrix = version_matrix()
    pythons, djangos = matrix["PYTHONS"], matrix["DJANGOS"]
    assert isinstance(pythons, list) and isinstance(djangos, dict)

    def claimed(prefix: str) -> list[str]:
        return [c.removeprefix(prefix) for c in project["classifiers"] if c.startswith(prefix)]

    assert claimed("Programming Language :: Python :: 3.") == [p[2:] for p in pythons]
    assert claimed("Framework :: Django :: ") == list(djangos)
    assert djangos == {series: f"django~={series}.0" for series in djangos}
    assert project["requires-python"] == f">={pythons[0]}"
    assert f"django>={next(iter(djangos))}" in project["dependencies"]


def test_ci_gives_each_database_a_cell_of_its_own() -> None:
    """noxfile.py runs each database of CI's TEST_DATABASE_URLS (.ci/run) in one cell of
    the matrix other than the main one, and refuses a URL no cell would run (or a second
    one of the same kind)."""
    ci = re.search(r'export TEST_DATABASE_URLS="([^"]+)"', (ROOT / ".ci/run").read_text())
    assert ci is not None
    urls = ci.group(1).split()
    script = (
        "import json, noxfile as n\n"
        "print(json.dumps({'|'.join(c): n.cell_database(c) for c in n.CELLS}))\n"
        "try:\n    n.database_extra('sqlite:///x')\nexcept ValueError as e:\n    print(e)\n"
        "import os\nos.environ['TEST_DATABASE_URLS'] = 'postgres://a/x postgresql://b/y'\n"
        "try:\n    n.cell_database(n.DATABASE_CELLS['postgres'])\n"
        "except ValueError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "TEST_DATABASE_URLS": " ".join(urls)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    given, refused, doubled = done.stdout.splitlines()
    cells = {cell: url for cell, url in json.loads(given).items() if url}
    assert sorted(cells.values()) == sorted(urls)
    assert "3.11|5.2" not in cells  # the main cell runs on SQLite
    assert "no cell runs 'sqlite:///x'" in refused
    assert "one URL per kind of database" in doubled
