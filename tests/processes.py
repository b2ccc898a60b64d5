"""Real subprocesses for end-to-end tests: uvicorn, Celery workers and beat, flushers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WAIT_SECONDS = 60.0


def database_url() -> str:
    """The URL of the database the tests are using, for a subprocess to share it."""
    s = connection.settings_dict
    vendor = connection.vendor
    if vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[vendor]
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"{scheme}://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def subprocess_env(redis_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEVIEW_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url(),
        TESTS_REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
        **settings,
    )
    return env


DEMO_DATABASE = "demo.sqlite3"


def demo_env(directory: Path, redis_url: str = "") -> dict[str, str]:
    """The demo's environment (example_asgi.settings): its own SQLite file and mode file
    (``DEMO_DIR``) in ``directory``, so that neither a developer's ``.demo/mode.env`` nor
    another test's reaches it; Redis mode when ``redis_url`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGEVIEW_", "TESTS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="example_asgi.settings",
        DATABASE_URL=f"sqlite:///{directory / DEMO_DATABASE}",
        DEMO_DIR=str(directory),
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """``python manage.py <args>`` (the demo's, with ``demo_env``); its output, both
    streams. A failure fails the test with that output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    """Wait for a server process to answer (with a bot user agent: not a view)."""

    def answers() -> bool:
        assert process.poll() is None, "the server exited early"
        try:
            httpx.get(url, headers={"user-agent": "readiness-probe-bot"}, timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_for(answers, f"a server at {url}")


def wait_for(
    condition: Callable[[], bool],
    what: str,
    seconds: float = WAIT_SECONDS,
    explain: Callable[[], str] | None = None,
) -> None:
    """Poll for an outcome of other processes (a bound on waiting, not a speed claim).
    ``explain`` describes the state seen at the timeout, for a failure that is rare."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            state = f"; {explain()}" if explain is not None else ""
            raise AssertionError(f"timed out waiting for {what}{state}")
        time.sleep(0.05)


@contextmanager
def running(
    args: list[str], env: dict[str, str], log: Path, stop_timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a command for the duration of the block; stop it with SIGTERM afterwards (and
    kill it if it has not exited ``stop_timeout`` seconds later)."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def uvicorn(app: str, port: int) -> list[str]:
    """uvicorn as the demo runs it: uvloop, with the lifespan protocol."""
    return [str(BIN / "uvicorn"), app, "--loop", "uvloop", "--lifespan", "on", "--port", str(port)]


def celery(*args: str) -> list[str]:
    return [str(BIN / "celery"), *args]
