"""Project-level promises: migrations match the models, the test command says what it
needs first. (What the docs say about settings and checks: tests/test_docs.py.)"""

from __future__ import annotations

import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


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
