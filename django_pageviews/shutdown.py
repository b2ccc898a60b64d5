"""Write what is buffered before the process goes away."""

from __future__ import annotations

import logging

from django.db import connections

from .buffer import buffer
from .conf import conf

logger = logging.getLogger(__name__)


def flush_all() -> int:
    """Ship this process's sync batcher to Redis (async mode; what Redis refuses goes to
    the fallback), then write the in-process buffer; the number of views written."""
    try:
        if conf.ASYNC_PROCESSING:
            from .sync_batcher import batcher

            batcher.ship_all(give_up=True)
        return buffer.flush()
    finally:
        connections.close_all()


def flush_at_exit() -> None:
    written = flush_all()
    if written:
        logger.info("Wrote %d buffered page views at exit.", written)
