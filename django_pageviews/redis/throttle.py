"""The throttle across processes in async mode: one script call per micro-batch.

The batchers (``sync_batcher``, ``aio/batcher.py``) ask Redis which events of a
micro-batch are the first view of their page by their visitor within the window; the
process's own table and the cache path are in ``django_pageviews/throttle.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript, Script

from django_pageviews import stats
from django_pageviews.conf import conf
from django_pageviews.events import PageViewEvent
from django_pageviews.throttle import store_failed

from .buffer import Keys

# KEYS: the throttle keys of a micro-batch; ARGV: the milliseconds left in each one's window.
# One script call rather than a pipeline of SETs: redis-py packs and parses each command
# of a pipeline in Python (with a timer per reply under asyncio), which cost three
# quarters of shipping a micro-batch (docs/profiles/). The keys share the prefix's hash tag.
# A full Redis refuses the first SET (deny-oom), before anything is written.
FIRST_VIEWS = """
local first = {}
for i, key in ipairs(KEYS) do
  first[i] = redis.call('SET', key, '1', 'NX', 'PX', ARGV[i]) and 1 or 0
end
return first
"""
_first_views = Script(None, FIRST_VIEWS.encode())  # type: ignore[arg-type]
_afirst_views = AsyncScript(None, FIRST_VIEWS.encode())  # type: ignore[arg-type]


def redis_prefix() -> str:
    return Keys.current().prefix + "throttle:"


def _commands(events: Sequence[PageViewEvent], prefix: str) -> list[tuple[int, str, int]]:
    """(event index, key, milliseconds left in its window) for each event to check."""
    seconds, now = conf.THROTTLE_SECONDS, time.time()
    out = []
    for i, e in enumerate(events):
        left = int((e.timestamp + seconds - now) * 1000)
        if e.throttle_key and left > 0:
            out.append((i, prefix + e.throttle_key, left))
    return out


def _script_args(commands: list[tuple[int, str, int]]) -> tuple[list[str], list[int]]:
    return [key for _, key, _ in commands], [ms for _, _, ms in commands]


def _keep(
    events: Sequence[PageViewEvent], commands: list[tuple[int, str, int]], results: list[Any]
) -> list[PageViewEvent]:
    refused = {i for (i, _, _), ok in zip(commands, results, strict=True) if not ok}
    if refused:
        stats.incr(stats.SKIP_THROTTLED, len(refused))
    return [e for i, e in enumerate(events) if i not in refused]


def first_views(client: Any, events: Sequence[PageViewEvent], prefix: str) -> list[PageViewEvent]:
    """The events that are the first view of their page by their visitor in any process
    within the window (async mode, sync client). If Redis fails, all of them: a view is
    never lost to the throttle."""
    commands = _commands(events, prefix)
    if not commands:
        return list(events)
    keys, args = _script_args(commands)
    try:
        results = _first_views(keys=keys, args=args, client=client)
    except Exception:
        store_failed()
        return list(events)
    return _keep(events, commands, results)


async def afirst_views(
    client: Any, events: Sequence[PageViewEvent], prefix: str
) -> list[PageViewEvent]:
    """``first_views`` on a redis.asyncio client."""
    commands = _commands(events, prefix)
    if not commands:
        return list(events)
    keys, args = _script_args(commands)
    try:
        results = await _afirst_views(keys=keys, args=args, client=client)
    except Exception:
        store_failed()
        return list(events)
    return _keep(events, commands, results)
