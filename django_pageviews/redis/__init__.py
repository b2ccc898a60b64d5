"""The Redis transport of PAGEVIEW_ASYNC_PROCESSING: shipping views in, draining them out.

Everything that speaks to Redis lives here, so that the optional dependency has one
boundary: no module outside this subpackage imports ``redis`` (or this subpackage) at
import time, and a site without the ``async`` extra never loads it. By step:

- in: ``shipping`` builds a shipment (``batching``: the batchers' shared core;
  ``sync_batcher``: the thread batcher; ``aio/batcher.py``: the asyncio one), ``throttle``
  checks reloads across processes, ``packing`` packs raw events;
- in Redis: ``client`` (the sync client), ``scripts`` (the Lua steps), ``buffer`` (keys,
  claims, acknowledgements), ``snapshots`` (what live reads take);
- out: ``drain`` claims and writes batches, ``splitting`` isolates a record the database
  refuses, ``aside`` keeps it and ``retry_aside`` replays it;
- trouble: ``unsettled`` (shipments of unknown outcome at shutdown), ``restore`` and
  ``restore_replay`` (a Redis restored from an older snapshot).
"""
