"""The servers a site may run its plain asgi.py or wsgi.py under, as a process group.

Each server starts in a session of its own (``setsid``), so that a signal can be sent to
the whole group, as systemd's KillMode=control-group and a terminal's Ctrl-C do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.processes import BIN, running, wait_for, wait_until_serving

ASGI = "tests.chaos.plain_asgi:application"
STOP_TIMEOUT = 60  # seconds a signalled server may take to exit
WSGI = "tests.chaos.plain_wsgi:application"


def _uvicorn(port: int, *extra: str) -> list[str]:
    return [str(BIN / "uvicorn"), ASGI, "--port", str(port), "--no-access-log", *extra]


def _gunicorn(port: int, app: str, *extra: str) -> list[str]:
    return [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}", *extra, app]


# Each with its defaults, one worker process unless the name says otherwise.
SERVERS: dict[str, Callable[[int], list[str]]] = {
    "uvicorn": lambda port: _uvicorn(port),
    "uvicorn-workers-2": lambda port: _uvicorn(port, "--workers", "2"),
    "gunicorn-uvicorn-worker": lambda port: _gunicorn(
        port, ASGI, "--worker-class", "uvicorn_worker.UvicornWorker"
    ),
    "daphne": lambda port: [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), ASGI],
    "hypercorn": lambda port: [str(BIN / "hypercorn"), "--bind", f"127.0.0.1:{port}", ASGI],
    "hypercorn-workers-4": lambda port: [
        str(BIN / "hypercorn"),
        "--workers",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        ASGI,
    ],
    "granian": lambda port: [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        ASGI,
    ],
    "gunicorn-wsgi": lambda port: _gunicorn(port, WSGI),
}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def serving(
    server: str, port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The server answering on ``port``; whatever of its group is left at the end is
    killed (a test that failed half way must not leave workers behind)."""
    args = ["setsid", *SERVERS[server](port)]  # not a group leader: setsid execs in place
    # A process that does not stop is made to print its threads' stacks (stop_group).
    with running(args, {**env, "PYTHONFAULTHANDLER": "1"}, log) as process:
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/plain/", process)
            yield process
        finally:
            if group_alive(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def stop_group(process: subprocess.Popen[bytes], sig: signal.Signals, log: Path) -> None:
    """Send ``sig`` to the server's whole process group and wait until all of it exited.
    If it has not within STOP_TIMEOUT, SIGABRT makes each of its Python processes print
    every thread's stack to ``log`` (faulthandler), and the failure quotes them."""
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        stacks = log.read_text(errors="replace")[-12000:]
        raise AssertionError(
            f"the server did not exit within {STOP_TIMEOUT} s of {sig.name}; its stacks:\n{stacks}"
        ) from None
    wait_for(lambda: not group_alive(process.pid), f"the server's processes to exit on {sig.name}")
