"""Keep a server worker alive on SIGTERM long enough for its graceful shutdown.

Some servers leave SIGTERM at its default in their worker processes and stop them
another way: hypercorn's workers (multiprocessing children) wait for an event that
their parent sets on SIGTERM. systemd (KillMode=control-group, its default) and
``kill -TERM -<pgid>`` send SIGTERM to every process of the service at once, so the
default action ends such a worker at once: requests in flight are cut and its buffered
views are lost, before the parent's orderly shutdown could reach it.

Only where SIGTERM is still at its default when the lifespan starts (no server handles
it in this process), the first SIGTERM is therefore taken as "the server is stopping":
the worker carries on so that the server's own shutdown (and our lifespan shutdown)
can run. If no lifespan shutdown has begun GRACE_SECONDS later (the signal was meant for
this process alone), the views are written and the process ends by SIGTERM as it would
have.

More SIGTERMs during the same stop are part of it: hypercorn's parent, as soon as one of
its workers exits (a worker still starting dies at the first SIGTERM), sends SIGTERM to
every other worker, which may still be finishing its requests or writing its views
(tests/chaos/test_restarts.py, a stop while workers start). They are taken until the
lifespan shutdown ends, for at most GRACE_SECONDS from the lifespan shutdown's start;
after that a SIGTERM has its default action again. The first SIGTERM ends the process at
once when the lifespan's loop is no longer running (a startup never followed by a
shutdown): the guard never keeps a process from ending for longer than the grace period.
A server that handles SIGTERM itself (uvicorn, granian, gunicorn's workers) is left
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)

GRACE_SECONDS = 10.0

_state: dict[str, object] = {}  # "loop", "stopping", "timer": while guarded


def guard() -> None:
    """At lifespan startup, on the loop's thread."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set signal handlers
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL or _state:
        return
    _state["loop"] = asyncio.get_running_loop()
    signal.signal(signal.SIGTERM, _on_sigterm)


def release() -> None:
    """At lifespan shutdown's start: the server stops in order, so the grace period's
    exit is not needed; a SIGTERM now is part of this stop, for at most GRACE_SECONDS."""
    _cancel_timer()
    loop = _state.get("loop")
    if isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running():
        _state["stopping"] = True
        _state["timer"] = loop.call_later(GRACE_SECONDS, _default)


def restore() -> None:
    """At lifespan shutdown's end: SIGTERM gets its default back."""
    _cancel_timer()
    _default()


def _default() -> None:
    if _state and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _state.clear()


def _cancel_timer() -> None:
    timer = _state.pop("timer", None)
    if isinstance(timer, asyncio.TimerHandle | asyncio.Task):
        timer.cancel()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _state.get("stopping"):
        return  # the same stop, signalled again (see the module docstring)
    loop = _state.get("loop")
    if isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running():
        with contextlib.suppress(RuntimeError):  # a loop closing meanwhile
            loop.call_soon_threadsafe(_arm, loop)
            _state["stopping"] = True
            return
    # No loop left to run the grace period (a lifespan started, never shut down, its loop
    # gone: a test harness, a script): swallowing the signal would leave the process
    # running for good. It ends as it would have without the guard.
    _default()
    signal.raise_signal(signal.SIGTERM)


def _arm(loop: asyncio.AbstractEventLoop) -> None:
    if _state and "timer" not in _state:  # not if the lifespan shutdown began meanwhile
        _state["timer"] = loop.create_task(_end_after_grace())


async def _end_after_grace() -> None:
    from .lifespan import shutdown

    await asyncio.sleep(GRACE_SECONDS)
    logger.warning(
        "SIGTERM, and no lifespan shutdown after %s s: writing page views and exiting.",
        GRACE_SECONDS,
    )
    _default()  # a SIGTERM during this last write ends the process
    await shutdown()
    signal.raise_signal(signal.SIGTERM)  # the default action, now
