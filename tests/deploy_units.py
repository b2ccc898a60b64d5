"""The systemd units of example_asgi/deploy/ read as systemd reads them, and moved from the
paths of a server (/srv/pageviews/...) to this checkout and its virtualenv, so that a test
can run their commands for real.

configparser cannot read units: a key may be given several times (each ``ExecStart=``
adds a command, an empty one clears the list, which is how a drop-in replaces a unit's
command), and systemd's ``%`` specifiers are not interpolation. Hence this small reader.
"""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

from tests.processes import BIN, ROOT

DEPLOY = ROOT / "example_asgi" / "deploy"
ALTERNATIVES = DEPLOY / "alternatives"

# Where the units expect things on a server (docs/howto/deployment.md, "Install the units").
VENV_BIN = "/srv/pageviews/venv/bin/"
APP_DIR = "/srv/pageviews/app"
ENV_FILE = "/etc/pageviews/pageviews.env"
STATE_DIR = "/var/lib/"

Unit = dict[str, dict[str, list[str]]]


def parse(text: str) -> Unit:
    """Sections -> keys -> every value assigned, in order, an empty assignment clearing
    the values before it (systemd's rule for list settings such as ExecStart)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    logical = text.replace("\\\n", " ")
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"a key outside any section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        values = section.setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return unit


def read(name: str, dropin: str | None = None) -> Unit:
    """A unit of example_asgi/deploy/, with a drop-in of alternatives/ applied after it,
    as systemd applies /etc/systemd/system/<unit>.d/*.conf."""
    text = (DEPLOY / name).read_text()
    if dropin is not None:
        text += "\n" + (ALTERNATIVES / dropin).read_text()
    return parse(text)


def only(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{section}.{key}: {values}"
    return values[0]


def expand(value: str, instance: str = "") -> str:
    """systemd's specifiers that the units use: %i (instance), %H (host name), %%."""
    out = []
    i = 0
    while i < len(value):
        if value[i] == "%" and i + 1 < len(value):
            spec = value[i + 1]
            out.append({"i": instance, "H": socket.gethostname(), "%": "%"}[spec])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def localize(text: str, state: Path, env_file: Path) -> str:
    """A unit's text with the server's paths replaced by this checkout's."""
    return (
        text.replace(VENV_BIN, f"{BIN}/")
        .replace(APP_DIR, str(ROOT))
        .replace(ENV_FILE, str(env_file))
        .replace(STATE_DIR, f"{state}/")
    )


def command(unit: Unit, state: Path, instance: str = "") -> list[str]:
    """The unit's ExecStart as argv, specifiers expanded, paths localized."""
    line = expand(only(unit, "Service", "ExecStart"), instance)
    return shlex.split(localize(line, state, Path(ENV_FILE)))


def environment() -> dict[str, str]:
    """The variables of pageviews.env (EnvironmentFile= syntax: KEY=VALUE, # comments)."""
    found: dict[str, str] = {}
    for raw in (DEPLOY / "pageviews.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found
