"""Write what is buffered before the process goes away."""

from __future__ import annotations

import logging

from django.db import connections

from .recorder import flush

logger = logging.getLogger(__name__)


def flush_all() -> int:
    """Flush this process's buffer and close the database connections the flush used."""
    try:
        return flush()
    finally:
        connections.close_all()


def flush_at_exit() -> None:
    from .buffer import buffer

    if buffer.pending_count():
        written = flush_all()
        logger.info("Wrote %d buffered page views at exit.", written)
