"""Redis memory per buffered view, and the CPU of shipping and claiming, in one run.

    .venv/bin/python -m bench.redis_memory [--quick]

Realistic views: PAGES article pages viewed Zipf-like, by VISITORS visitors (each an
anonymised address and a user agent out of thousands: versions of the browsers of
bench/user_agents.py, also Zipf-like), hashed and shipped by the package's own
``redis.shipping.build_shipment`` and SHIP script into a private redis-server (bench/common.py),
in shipments of 1, 50 and 500 views (a micro-batch's size decides how much its events
share). "previous" is how the version before shipped them (bench/previous_format.py: one
JSON list element per view, live totals and day lists computed by the producer), in the
same run, with the same shipments. "0.2.6-like" is the original 0.2.6's buffer
(bench/original.py): one LPUSH of one JSON object per view (its full address, session key,
content type and object ids), the same views as the shipments of 1.

- bytes per view: the INFO used_memory after shipping N views into an empty database,
  with raw events on, less the same shipments with raw events off (what the raw events
  add), and MEMORY USAGE of the events list divided by N;
- counts only: used_memory per distinct (day, target) pair, with the live totals and the
  per-day top lists (toplists.py) included; also for a large site (LARGE_PAGES pages, a
  day's lists then past the size at which Redis keeps their sets compact);
- shipping CPU: this process's CPU (time.process_time) per view of building a shipment
  and its SHIP arguments (visitor hashes, counts, raw-event encoding; before: also the
  live totals and day lists) and of the SHIP call (command encoding, socket), and the
  Redis server's own (INFO commandstats) per view;
- claim + decode: CPU per view of claiming BATCH_SIZE views, reading the claim and
  decoding every raw event (what the drain does before the database).
"""

from __future__ import annotations

import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import Section, spread  # noqa: E402

PAGES = 10_000
VISITORS = 5_000
USER_AGENTS = 3_000
SIZES = (1, 50, 500)
FORMATS = ("compact", "previous")
ORIGINAL = ("0.2.6-like", 1, True)  # its key in the results: a view per LPUSH
# A large site's day, counts only: pages and views (quick: fewer), and its results' key.
LARGE_PAGES, LARGE_VIEWS = 100_000, 300_000
LARGE = ("large", 500, None)
CLAIM_SIZE = 1000
REPEATS = 3


def user_agents(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct browser user agents: the sample's, with other version numbers."""
    from bench.user_agents import BROWSERS

    found: set[str] = set(BROWSERS)
    while len(found) < n:
        base = rng.choice(BROWSERS)
        found.add(
            re.sub(
                r"(?<=/)\d+(\.\d+)*",
                lambda m: ".".join(str(rng.randrange(200)) for _ in m.group().split(".")),
                base,
                count=1,
            )
        )
    return sorted(found)


def zipf(n: int) -> list[float]:
    """Cumulative weights of ranks 1..n with weight 1/rank."""
    total, cumulative = 0.0, []
    for rank in range(1, n + 1):
        total += 1 / rank
        cumulative.append(total)
    return cumulative


class Views:
    """A stream of realistic events (not yet hashed: build_shipment hashes them)."""

    def __init__(self, seed: int = 11, pages: int = PAGES) -> None:
        from django_pageviews.events import PK, Target

        self.rng = random.Random(seed)
        agents = user_agents(USER_AGENTS, self.rng)
        agent_weights = zipf(len(agents))
        self.visitors = [
            (
                f"{self.rng.randrange(1, 224)}.{self.rng.randrange(256)}."
                f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                self.rng.choices(agents, cum_weights=agent_weights)[0],
            )
            for _ in range(VISITORS)
        ]
        self.visitor_weights = zipf(VISITORS)
        self.targets = [
            Target(
                f"/articles/{page}-some-title-{page * 7}/",
                "article-detail",
                "tests.article",
                PK,
                str(page),
            )
            for page in range(pages)
        ]
        self.page_weights = zipf(pages)

    def take(self, n: int) -> list[Any]:
        from django_pageviews.events import PageViewEvent
        from django_pageviews.privacy import stored_ip

        now = time.time()
        pages = self.rng.choices(self.targets, cum_weights=self.page_weights, k=n)
        who = self.rng.choices(self.visitors, cum_weights=self.visitor_weights, k=n)
        return [
            PageViewEvent(
                uuid.uuid4().hex, now + i * 0.001, target, stored_ip(ip), ua, "", client_ip=ip
            )
            for i, (target, (ip, ua)) in enumerate(zip(pages, who, strict=True))
        ]


def used_memory(client: Any) -> int:
    value: int = client.info("memory")["used_memory"]
    return value


def ship_cost(
    client: Any, batches: list[Any], fmt: str, raw: bool, visitors: bool = True
) -> dict[str, float]:
    """Ship ``batches`` (lists of events) into an empty database; bytes and CPU.
    ``visitors``: PAGEVIEW_COUNT_VISITORS (counts only: a field per visitor and day)."""
    from django.test import override_settings

    from bench import previous_format
    from bench.common import flush_redis
    from django_pageviews.redis.buffer import Keys
    from django_pageviews.redis.scripts import ship
    from django_pageviews.redis.shipping import build_shipment
    from django_pageviews.wire import counts_views

    flush_redis(client)
    client.config_resetstat()
    before = used_memory(client)
    n = sum(map(len, batches))
    build_cpu = ship_cpu = 0.0
    with override_settings(PAGEVIEW_STORE_RAW=raw, PAGEVIEW_COUNT_VISITORS=visitors):
        for events in batches:
            started = time.process_time()
            if fmt == "compact":
                keys, args = build_shipment(events, Counter()).script_args()
                script = ship
            else:
                keys, args = previous_format.build(events, raw)
                script = previous_format.ship
            built = time.process_time()
            script(keys=keys, args=args, client=client)
            ship_cpu += time.process_time() - built
            build_cpu += built - started
    stats = client.info("commandstats")
    server = sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_eval"))
    events_key = Keys.current().events
    fields = client.hkeys(Keys.current().pending)
    pairs = sum(1 for f in fields if counts_views(f.decode() if isinstance(f, bytes) else f))
    families = {
        name if name.startswith("n ") else f"mem_{name}": b if name.startswith("n ") else b / pairs
        for name, b in key_families(client).items()
    }
    return families | {
        "bytes": (used_memory(client) - before) / n,
        "list": (client.memory_usage(events_key, samples=0) or 0) / n,
        "build": build_cpu / n * 1e6,
        "ship": ship_cpu / n * 1e6,
        "server": server / n,
        "pairs": pairs,
        "visitor_fields": len(fields) - pairs,
        "views": n,
    }


# Key families of the counts (decision 28): the pending count fields; the live totals'
# hash (the grand total; every total by full name in the previous layout) and their small
# hashes by digest; the per-day lists' registry, their small sets, and whole lists of the
# previous layout; the shipments' sent markers.
FAMILIES = (
    "pending",
    "totals hash",
    "total buckets",
    "list registry",
    "list sets",
    "whole lists",
    "sent",
)
COMPACT = ("listpack", "ziplist")  # Redis 7's and 6.2's names of the compact encoding


def family(name: str) -> str | None:
    """The family of a key, by its name after the prefix (None: not the counts')."""
    head, _, rest = name.partition(":")
    if head == "dims":
        return "total buckets" if rest else "totals hash"
    if head == "top":
        if not rest:
            return "list registry"
        return "list sets" if re.search(r"\d{4}-\d\d-\d\d:\d+$", rest) else "whole lists"
    return head if head in ("pending", "sent") else None


def key_families(client: Any) -> dict[str, int]:
    """MEMORY USAGE of the buffer's keys by family (FAMILIES), the number of small hashes
    and sets (``n buckets``, ``n sets``), and how many of those are not in the compact
    encoding (``n loose``)."""
    from django_pageviews.redis.buffer import Keys

    prefix = Keys.current().prefix
    found = dict.fromkeys(FAMILIES, 0) | {"n buckets": 0, "n sets": 0, "n loose": 0}
    for key in client.scan_iter(match=prefix + "*", count=1000):
        name = family(key[len(prefix) :])
        if name is None:
            continue
        found[name] += client.memory_usage(key, samples=0) or 0
        if name in ("total buckets", "list sets"):
            found["n buckets" if name == "total buckets" else "n sets"] += 1
            found["n loose"] += client.object("encoding", key) not in COMPACT
    return found


def original_cost(client: Any, events: list[Any]) -> dict[str, float]:
    """0.2.6's buffer of ``events`` (bench/original.py) in an empty database: bytes (the
    list is all it kept), the CPU of building and pushing each view (its Celery task's),
    the server's, and that of popping and decoding them all (its drain's)."""
    from bench import original
    from bench.common import flush_redis

    flush_redis(client)
    client.config_resetstat()
    before = used_memory(client)
    content_type = original.content_type_id(events[0])
    sent = [original.fields(event, content_type) for event in events]
    build_cpu = push_cpu = 0.0
    for one in sent:
        started = time.process_time()
        view = original.encode(one)
        built = time.process_time()
        original.push(client, view)
        push_cpu += time.process_time() - built
        build_cpu += built - started
    stats = client.info("commandstats")
    server = sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("lpush", "llen"))
    n = len(events)
    cost = {
        "bytes": (used_memory(client) - before) / n,
        "list": (client.memory_usage(original.KEY, samples=0) or 0) / n,
        "build": build_cpu / n * 1e6,
        "ship": push_cpu / n * 1e6,
        "server": server / n,
    }
    started = time.process_time()
    while original.pop_batch(client):
        pass
    client.delete(original.KEY)  # gone once empty; removed in any case
    return cost | {"claim": (time.process_time() - started) / n * 1e6}


def claim_cost(client: Any) -> float:
    """CPU per view of claiming everything shipped, reading and decoding it."""
    from django_pageviews.redis.buffer import claim, read_claim
    from django_pageviews.wire import decode_event

    views = 0
    started = time.process_time()
    while (batch_id := claim(client, CLAIM_SIZE)) is not None:
        batch = read_claim(client, batch_id)
        views += len([decode_event(raw) for raw in batch.raw_events])
    return (time.process_time() - started) / max(views, 1) * 1e6


def measure(quick: bool) -> dict[tuple[str, int, bool | None], list[dict[str, float]]]:
    from bench.common import redis_client

    client = redis_client()
    stream = Views()
    total = 2_000 if quick else 10_000
    results: dict[tuple[str, int, bool | None], list[dict[str, float]]] = {}
    scale = 5 if quick else 1
    large = Views(pages=LARGE_PAGES // scale).take(LARGE_VIEWS // scale)
    large_batches = [large[i : i + LARGE[1]] for i in range(0, len(large), LARGE[1])]
    for _ in range(1 if quick else REPEATS):
        for size in SIZES:
            events = stream.take(total)
            batches = [events[i : i + size] for i in range(0, total, size)]
            for fmt in FORMATS:
                for raw in (True, False):
                    cost = ship_cost(client, batches, fmt, raw)
                    if raw:
                        cost["claim"] = claim_cost(client)
                    results.setdefault((fmt, size, raw), []).append(cost)
                # Counts only without the visitor fields: what the raw events add is
                # measured against it (raw events carry the hash: no visitor field then).
                cost = ship_cost(client, batches, fmt, False, visitors=False)
                results.setdefault((fmt, size, None), []).append(cost)
            if size == 1:  # 0.2.6 buffered each view on its own
                results.setdefault(ORIGINAL, []).append(original_cost(client, events))
        cost = ship_cost(client, large_batches, "compact", False, visitors=False)
        results.setdefault(LARGE, []).append(cost | {"pages": LARGE_PAGES // scale})
    return results


def column(runs: list[dict[str, float]], name: str, digits: int = 1) -> str:
    return spread([r[name] for r in runs], digits)


RAW_HEADERS = (
    "format",
    "views per shipment",
    "raw events: B/view (used_memory)",
    "events list: B/view (MEMORY USAGE)",
    "build us/view",
    "SHIP call us/view",
    "Redis us/view",
    "claim + decode us/view",
)
COUNT_HEADERS = (
    "format",
    "views per shipment",
    "distinct (day, target)",
    "counts only: B per (day, target)",
    "pending fields",
    "totals hash",
    "total buckets",
    "list registry",
    "list sets",
    "whole lists",
    "sent markers",
    "rest (Redis's own)",
    "small hashes + sets (not compact)",
    "visitor fields",
    "B per visitor field",
    "counts only with visitors: B/view",
)


def raw_row(fmt: str, size: int, added: list[float], runs: list[dict[str, float]]) -> list[object]:
    """A row of the raw events' table: ``added``, the bytes per view the events take."""
    cpu = [column(runs, name) for name in ("build", "ship", "server", "claim")]
    return [fmt, size, spread(added), column(runs, "list", 0), *cpu]


def per_pair(runs: list[dict[str, float]]) -> list[float]:
    return [r["bytes"] * r["views"] / r["pairs"] for r in runs]


def count_row(fmt: str, size: int, off: list[dict[str, float]]) -> list[object]:
    """A row of the counts-only table, but for its visitor columns."""
    families = [sum(r[f"mem_{n}"] for n in FAMILIES) for r in off]
    rest = [p - f for p, f in zip(per_pair(off), families, strict=True)]
    keys = f"{off[0]['n buckets']:,.0f} + {off[0]['n sets']:,.0f} ({off[0]['n loose']:,.0f})"
    return (
        [fmt, size, f"{off[0]['pairs']:,.0f}", spread(per_pair(off))]
        + [column(off, f"mem_{name}", 0) for name in FAMILIES]
        + [spread(rest, 0), keys]
    )


def render(results: dict[tuple[str, int, bool | None], list[dict[str, float]]]) -> Section:
    from bench.common import markdown_table

    rows: list[list[object]] = []
    counts: list[list[object]] = []
    headline = []
    original = [r["bytes"] for r in results[ORIGINAL]]
    large = results[LARGE]
    large_pairs = spread(per_pair(large))
    for size in SIZES:
        if size == 1:
            rows.append(raw_row(ORIGINAL[0], size, original, results[ORIGINAL]))
        for fmt in FORMATS:
            on, with_visitors = results[(fmt, size, True)], results[(fmt, size, False)]
            off = results[(fmt, size, None)]
            added = [a["bytes"] - b["bytes"] for a, b in zip(on, off, strict=True)]
            per_visitor = [
                (v["bytes"] - b["bytes"]) * v["views"] / v["visitor_fields"]
                for v, b in zip(with_visitors, off, strict=True)
                if v["visitor_fields"]
            ]
            rows.append(raw_row(fmt, size, added, on))
            counts.append(
                count_row(fmt, size, off)
                + [
                    f"{with_visitors[0]['visitor_fields']:,.0f}",
                    spread(per_visitor, 0) if per_visitor else "-",
                    column(with_visitors, "bytes", 0),
                ]
            )
            if size == 50:
                cpu = [r["build"] + r["ship"] for r in on]
                headline.append(
                    f"Redis, raw events, {fmt}, shipments of 50 views: {spread(added)} B/view "
                    f"(target <= 120), shipping {spread(cpu, 1)} us/view of web-process CPU; "
                    f"counts only {spread(per_pair(off))} B per (day, target) (target <= 200"
                    f", {large_pairs} at a large site's {large[0]['pairs']:,.0f}); "
                    f"unique visitors add {column(with_visitors, 'bytes', 0)} - "
                    f"{column(off, 'bytes', 0)} B/view with raw events off"
                    + (f"; 0.2.6-like: {spread(original)} B/view" if fmt == "compact" else "")
                )
    counts.append(count_row(f"compact, {large[0]['pages']:,.0f} pages", LARGE[1], large))
    counts[-1] += ["-"] * (len(COUNT_HEADERS) - len(counts[-1]))
    body = "\n\n".join(
        (
            markdown_table(RAW_HEADERS, rows),
            markdown_table(COUNT_HEADERS, counts),
            NOTES,
        )
    )
    return Section("Redis memory per view", body, headline, files=["profiles/redis_shipping.txt"])


NOTES = f"""Raw events: used_memory with raw events on less the same shipments with them off (what
the events add), and MEMORY USAGE of the events list, per view. Build: the producer's CPU
per view for a shipment and its SHIP arguments; SHIP call: the client's CPU for the call;
Redis: the server's CPU for SHIP (INFO commandstats); claim + decode: the drain's CPU per
view to claim BATCH_SIZE views, read the claim and decode every raw event. Counts only:
used_memory per distinct (day, target) with raw events off, and MEMORY USAGE by key
family (decision 28): the pending count fields; the live totals (up to 8 per page), in
the totals hash (the grand total; the previous layout kept every total there by its full
name) and in small hashes keyed by an 8-byte digest; the per-day lists, in small sorted
sets per list (the previous layout: one whole sorted set per list of thousands of
members) and their registry; the shipments' sent markers (one per shipment for an hour).
Rest: used_memory less all of those (the keyspace's own tables, allocator rounding).
Then: how many small hashes and sets there are, and (in brackets) how many of them
Redis no longer keeps in its compact encoding. Those columns and the raw events' are
measured with PAGEVIEW_COUNT_VISITORS off (raw events carry the visitor hash: with them
on, no visitor field is shipped). The last three: with it on (the default), the visitor
fields a counts-only shipment adds (one per visitor and day pending, decision 34), their
bytes each, and used_memory per view of the whole counts-only run. The last row: a large
site's day, counts only, visitors off ({LARGE_VIEWS:,} views over {LARGE_PAGES:,} pages,
shipments of {LARGE[1]}; quick: a fifth of both): a list's sets then hold more members
than Redis keeps in its compact encoding (128 by default, zset-max-listpack-entries),
and each member costs more.

0.2.6-like: the original 0.2.6's buffer (bench/original.py), one JSON list element per
view pushed on its own (LPUSH, then LLEN), the views of the shipments of 1. Its bytes per
view are all of used_memory's growth (the list was all 0.2.6 kept in Redis; it counted
nothing there). Build: ``json.dumps`` of the view and its time; SHIP call: the LPUSH and
LLEN; claim + decode: an RPOP and ``json.loads`` per view. 0.2.6 spent that CPU in its
Celery worker's ``buffer_page_view`` task, not in the web process (which sent a Celery
message per view instead: the throughput scenario measures that)."""


def run(quick: bool) -> Section:
    with tempfile.TemporaryDirectory(prefix="pageviews-memory-") as tmp:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        os.environ.setdefault("BENCH_DATABASE_URL", f"sqlite:///{tmp}/memory.sqlite3")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return render(measure(quick))


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
