"""The package's background threads, started so that they never take a process's signals.

The kernel hands a signal sent to the process (Ctrl-C, ``kill``, systemd's SIGTERM) to any
thread that does not block it. Python runs the handler on the main thread only, so when the
signal lands on another thread, a main thread asleep in ``select()`` learns of it only
if the server set a wakeup file descriptor. Daphne (Twisted's asyncio reactor) was seen
asleep 60 s after SIGINT, with the writer thread alive (tests/chaos/test_restarts.py):
the server did not stop. A thread of ours that blocks the signals servers act on leaves
them to the threads that handle them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

# The signals servers stop, reload or scale on (gunicorn uses the most): never ours to take.
SERVER_SIGNALS = frozenset(
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGCHLD",
        "SIGWINCH",
        "SIGTTIN",
        "SIGTTOU",
    )
    if hasattr(signal, name)
)


def start(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
    """A daemon thread running ``target(*args)`` with SERVER_SIGNALS blocked, started."""

    def run() -> None:
        if hasattr(signal, "pthread_sigmask"):  # not on Windows, which has no such signals
            signal.pthread_sigmask(signal.SIG_BLOCK, SERVER_SIGNALS)
        target(*args)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
