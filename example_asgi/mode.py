"""The demo's mode (database and pipeline), recorded by ``scripts/demo.sh`` for later commands.

The demo switches database and pipeline with ``DATABASE_URL`` and ``REDIS_URL``. A
``python manage.py ...`` or ``celery -A example_asgi ...`` started later in another
terminal would not see what the demo was started with, and would silently count into
another database or read another pipeline. So ``demo.sh`` writes both to
``$DEMO_DIR/mode.env`` (``.demo/mode.env`` by default) and the settings take a variable
missing from the environment from there. A variable set in the environment wins, even
set to '' (in-process mode for one command, whatever the demo runs).

No Django import here: the settings module reads it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODE_VARIABLES = ("DATABASE_URL", "REDIS_URL")
MODE_FILE_NAME = "mode.env"


def demo_dir() -> Path:
    """Where the demo keeps its state; tests point ``DEMO_DIR`` at their own directory."""
    return Path(os.environ.get("DEMO_DIR") or ROOT / ".demo")


def mode_file() -> Path:
    return demo_dir() / MODE_FILE_NAME


def recorded() -> dict[str, str]:
    """The variables ``demo.sh`` recorded, {} before its first run."""
    try:
        text = mode_file().read_text()
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.startswith("#")}


def demo_setting(name: str) -> str:
    """``name`` from the environment if set there, else as ``demo.sh`` recorded it, else ''."""
    if name in os.environ:
        return os.environ[name]
    return recorded().get(name, "")


def record(environ: Mapping[str, str]) -> Path:
    """Write the mode variables of ``environ`` (unset ones as '') to the mode file."""
    path = mode_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by scripts/demo.sh: the mode later manage.py and celery commands run in.",
        "# An environment variable of the same name wins over this file.",
        *(f"{name}={environ.get(name, '')}" for name in MODE_VARIABLES),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":  # python -m example_asgi.mode: what demo.sh runs
    sys.stdout.write(f"Mode recorded in {record(os.environ)}\n")
