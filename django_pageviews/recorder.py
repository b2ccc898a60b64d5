"""Where an event goes once the request decided it is a view."""

from __future__ import annotations

from .buffer import buffer
from .events import PageViewEvent


def record(event: PageViewEvent) -> bool:
    """Hand ``event`` to the configured pipeline; False when it was dropped (counted)."""
    return buffer.add(event)


def flush() -> int:
    """Write every view waiting in this process now; the number written."""
    return buffer.flush()
