"""Raw events in Redis: a LIST (RPUSH, claim with LRANGE+LTRIM in Lua) versus a STREAM
(XADD, claim with XREADGROUP + XACK + XDEL), measured side by side in one run.

    .venv/bin/python bench/raw_events.py

Each event is the compact JSON ``wire.encode_event`` makes of a realistic view. Every
phase starts from an empty Redis database 12, so that no phase sees another's leftovers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.common import (  # noqa: E402
    flush_redis,
    fmt,
    markdown_table,
    median,
    realistic_event,
    redis_client,
    undisturbed,
    wait_for_quiet_machine,
)
from django_pageviews.wire import encode_event  # noqa: E402

N = 100_000
PUSH_BATCH = 500
CLAIM_SIZES = (100, 500)
REPEATS = 3
PAGES = 2_000
LIST_KEY = "{pageviews}:events"
CHUNK_KEY = "{pageviews}:evchunk:bench"
STREAM_KEY = "{pageviews}:stream"
GROUP = "drain"
CONSUMER = "bench"
FIELD = "e"

# The claim the brief names: take n events and cut them off the list, atomically.
LIST_CLAIM = """
local events = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #events > 0 then redis.call('LTRIM', KEYS[1], #events, -1) end
return events
"""
# What the package's CLAIM script does so that a flusher killed mid-batch loses nothing:
# move the events to the batch's own list; the flusher then reads it and DELs it (ack).
LIST_CLAIM_SAFE = """
local events = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #events > 0 then
  redis.call('RPUSH', KEYS[2], unpack(events))
  redis.call('LTRIM', KEYS[1], #events, -1)
end
return #events
"""
LIST_PUSH_LUA = "return redis.call('RPUSH', KEYS[1], unpack(ARGV))"
STREAM_PUSH_LUA = """
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', 'e', ARGV[i]) end
return #ARGV
"""


class Mechanism(Protocol):
    name: str

    def setup(self) -> None: ...
    def push(self, batch: list[str]) -> None: ...
    def push_lua(self, batch: list[str]) -> None: ...
    def claim(self, n: int) -> int: ...
    def key(self) -> str: ...


class ListBuffer:
    name = "list"

    def __init__(self, client: Any, safe: bool = False) -> None:
        self.client = client
        self.safe = safe
        self._claim = client.register_script(LIST_CLAIM_SAFE if safe else LIST_CLAIM)
        self._push = client.register_script(LIST_PUSH_LUA)

    def setup(self) -> None:
        pass

    def push(self, batch: list[str]) -> None:
        self.client.rpush(LIST_KEY, *batch)

    def push_lua(self, batch: list[str]) -> None:
        self._push(keys=[LIST_KEY], args=batch)

    def claim(self, n: int) -> int:
        if not self.safe:
            return len(self._claim(keys=[LIST_KEY], args=[n]))
        if not self._claim(keys=[LIST_KEY, CHUNK_KEY], args=[n]):
            return 0
        events: list[str] = self.client.lrange(CHUNK_KEY, 0, -1)  # the flusher reads
        self.client.delete(CHUNK_KEY)  # ... and acknowledges after its commit
        return len(events)

    def key(self) -> str:
        return LIST_KEY


class StreamBuffer:
    name = "stream"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._push = client.register_script(STREAM_PUSH_LUA)

    def setup(self) -> None:
        self.client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)

    def push(self, batch: list[str]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for raw in batch:
                pipe.xadd(STREAM_KEY, {FIELD: raw})
            pipe.execute()

    def push_lua(self, batch: list[str]) -> None:
        self._push(keys=[STREAM_KEY], args=batch)

    def claim(self, n: int) -> int:
        reply = self.client.xreadgroup(GROUP, CONSUMER, {STREAM_KEY: ">"}, count=n)
        if not reply:
            return 0
        entries = reply[0][1]
        if not entries:
            return 0
        ids = [entry_id for entry_id, _fields in entries]
        with self.client.pipeline(transaction=False) as pipe:  # after the commit
            pipe.xack(STREAM_KEY, GROUP, *ids)
            pipe.xdel(STREAM_KEY, *ids)
            pipe.execute()
        return len(ids)

    def key(self) -> str:
        return STREAM_KEY


def batches(raw: list[str], size: int) -> list[list[str]]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def claim_all(mech: Mechanism, size: int, expected: int) -> int:
    total = 0
    while got := mech.claim(size):
        total += got
    if total != expected:
        raise AssertionError(f"{mech.name}: claimed {total} of {expected} events")
    return total


def fresh(client: Any, mech: Mechanism) -> None:
    flush_redis(client)
    mech.setup()


def timed(action: Callable[[], int]) -> float:
    """Views per second of ``action`` (which returns how many views it handled)."""
    started = time.perf_counter()
    n = action()
    return n / (time.perf_counter() - started)


def measure(client: Any, mech: Mechanism, raw: list[str]) -> dict[str, float]:
    chunks = batches(raw, PUSH_BATCH)
    out: dict[str, float] = {}

    def push_all(push: Callable[[list[str]], None]) -> int:
        for chunk in chunks:
            push(chunk)
        return len(raw)

    fresh(client, mech)
    time.sleep(0.2)  # let the allocator settle after the flush
    before = used_memory(client)
    out["push"] = timed(lambda: push_all(mech.push))
    out["bytes_used_memory"] = (used_memory(client) - before) / len(raw)
    out["bytes_memory_usage"] = client.memory_usage(mech.key(), samples=0) / len(raw)
    fresh(client, mech)
    out["push_lua"] = timed(lambda: push_all(mech.push_lua))
    for size in CLAIM_SIZES:
        fresh(client, mech)
        push_all(mech.push)
        out[f"claim_{size}"] = timed(partial(claim_all, mech, size, len(raw)))
    out["bytes_left"] = client.memory_usage(mech.key(), samples=0) or 0
    return out


ROWS = [
    ("bytes", "bytes_used_memory", "Redis memory per view, INFO used_memory delta / N"),
    ("bytes", "bytes_memory_usage", "Redis memory per view, MEMORY USAGE key / N"),
    ("views/s", "push", "push, 500 views per round trip (RPUSH / pipelined XADD)"),
    ("views/s", "push_lua", "push, 500 views per Lua call (as the ship script does)"),
    ("views/s", "claim_100", "claim 100 per call, until empty"),
    ("views/s", "claim_500", "claim 500 per call, until empty"),
    ("bytes", "bytes_left", "key's memory once everything is claimed (bytes, total)"),
]


def main() -> None:
    client = redis_client()
    now = time.time()
    raw = [encode_event(realistic_event(i % PAGES, now)) for i in range(N)]
    mechanisms: list[Mechanism] = [ListBuffer(client), StreamBuffer(client)]
    safe = ListBuffer(client, safe=True)
    runs: dict[str, list[dict[str, float]]] = {"list": [], "stream": [], "safe": []}

    def repeat() -> dict[str, dict[str, float]]:
        out = {mech.name: measure(client, mech, raw) for mech in mechanisms}
        out["safe"] = {}
        for size in CLAIM_SIZES:
            fresh(client, safe)
            for chunk in batches(raw, PUSH_BATCH):
                safe.push(chunk)
            out["safe"][f"claim_{size}"] = timed(partial(claim_all, safe, size, len(raw)))
        return out

    discarded = 0
    for i in range(REPEATS):
        wait_for_quiet_machine()
        result, thrown = undisturbed(repeat, f"repeat {i + 1}")
        discarded += thrown
        for name, values in result.items():
            runs[name].append(values)
    flush_redis(client)
    client.close()

    def med(name: str, key: str) -> float:
        return median([r[key] for r in runs[name]])

    size = sum(len(r.encode()) for r in raw) / len(raw)
    print(f"N = {N:,} events, {size:.0f} bytes of JSON each on average; median of {REPEATS}")
    print(f"repeats ({discarded} more thrown away: another process used the database).")
    print()
    rows: list[list[object]] = []
    for unit, key, label in ROWS:
        lst, stream = med("list", key), med("stream", key)
        ratio = f"{stream / lst:.2f}" if lst else "n/a"
        digits = 1 if unit == "bytes" and key != "bytes_left" else 0
        rows.append([label, fmt(lst, digits), fmt(stream, digits), ratio])
    for size_ in CLAIM_SIZES:
        lst, stream = med("safe", f"claim_{size_}"), med("stream", f"claim_{size_}")
        rows.append(
            [
                f"claim {size_}, crash-safe list (move to batch list, read, DEL)",
                fmt(lst),
                fmt(stream),
                f"{stream / lst:.2f}",
            ]
        )
    print(markdown_table(["measure", "list", "stream", "stream / list"], rows))


if __name__ == "__main__":
    main()
