"""Replay what the drain set aside, once the database takes it.

Set aside are single records the database refused for their data (counted as invalid
when set aside; the replay takes them back from invalid in its own transaction), and,
from earlier development versions, whole claimed batches (replayed under their own batch id, so
that one written before is not written again, and split like a new claim if refused).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django_pageviews.ledger import batch_states

from .aside import aside_ids, read_aside, unpark
from .buffer import all_shards
from .splitting import StillRefused, store

logger = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    replayed: int = 0  # set-aside records (or old batches) now written, or found written
    views: int = 0
    refused: int = 0  # still refused: left set aside
    failed: bool = False  # the database could not write: stopped


def retry_aside(client: object) -> ReplayResult:
    """Write every set-aside record (of every shard) the database now takes; leave the
    others."""
    result = ReplayResult()
    for keys in all_shards(client):
        ids = aside_ids(client, keys)
        states = batch_states(ids)
        for batch_id in ids:
            record = read_aside(client, batch_id, keys)
            try:
                written = store(client, record, states.get(batch_id), replaying=True)
            except StillRefused:
                result.refused += 1
                continue
            except Exception:
                result.failed = True
                logger.exception("Replaying set-aside page-view record %s failed.", batch_id)
                return result
            unpark(client, batch_id, keys)
            result.replayed += 1
            result.views += written
            logger.info("Replayed set-aside page-view record %s (%d views).", batch_id, written)
    return result
