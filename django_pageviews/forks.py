"""Fork safety in one place: state that must not cross a fork registers how to reset it.

A forked child (gunicorn and Celery prefork workers, ``multiprocessing``) starts with
copies of its parent's buffers, locks, writer threads that no longer run, Redis
connections and random state. Views copied into a child are the parent's to write, and
a connection shared by two processes mixes their replies. Each module that holds such
state registers a reset with ``after_fork``; the resets run in the child right after
the fork, through ``os.register_at_fork``.

Some servers fork in C without running Python's fork hooks (uWSGI, unless
``py-call-osafterfork`` is on): the places that use fork-sensitive state (adding a
view, shipping, asking for a Redis client or a salt) call ``check()`` first, which
compares the process id (one ``getpid``) and runs the resets the hooks missed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)

Reset = Callable[[], None]

_resets: list[Reset] = []
_pid = os.getpid()  # the process the registered state belongs to


def after_fork(reset: Reset) -> Reset:
    """Run ``reset`` in every forked child, in the order registered; returns it, so that
    it can decorate a module-level function."""
    _resets.append(reset)
    return reset


def check() -> None:
    """Reset the registered state if this process is a child that Python's fork hooks
    did not reach (a fork made in C)."""
    if _pid != os.getpid():
        _in_child()


def _in_child() -> None:
    global _pid
    _pid = os.getpid()
    for reset in list(_resets):
        try:
            reset()
        except Exception:  # one failing reset must not leave the others' state shared
            logger.exception("Resetting page-view state after a fork failed.")


os.register_at_fork(after_in_child=_in_child)
