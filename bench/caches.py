"""Every cache a web process keeps, its bound, and its memory at that bound.

    python -m bench.caches        # each cache filled in this process, measured (tracemalloc)

The package keeps nothing per view that outlives the view's trip to Redis or the
database, except in these caches, each bounded by a count of entries (``_caches``). A
process reaches a bound only once its traffic has been varied enough: its memory then
stops growing. ``fill`` brings every cache of this process to its bound with entries
as large as real ones can be (user agents of USER_AGENT_MAX_LENGTH characters, IPv6
addresses), which ``bench.webproc --fill-caches`` does before its first view, so that
bench/memory.py measures what the views add to a process already holding everything it
ever will. ``measure`` is the same fill, cache by cache, in a fresh process: the bytes
each one holds at most, for the memory section.

The throttle table is filled twice over: a Python dict that has held its most entries
grows once more at its first resize under churn (a table of n live entries is rebuilt
with room for 3n), so its memory is largest only after about 1.75 times its bound of new
keys. What is not listed here is bounded by settings, not by a cache: the views waiting
in the in-process buffer (PAGEVIEW_MAX_BUFFER_SIZE) or in a batcher's queue
(PAGEVIEW_LOCAL_QUEUE_SIZE); ``event_bytes`` measures what one waiting view costs.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

THROTTLE_FILL = 2  # times the bound of new keys: past the table's first resize when full


@dataclass(frozen=True)
class Cache:
    name: str  # module and attribute, as the table shows it
    holds: str  # what one entry is
    bound: Callable[[], int]
    size: Callable[[], int]
    fill: Callable[[], None]


def _user_agent(i: int) -> str:
    """A distinct browser user agent of the longest length the package keeps."""
    from bench.user_agents import BROWSERS
    from django_pageviews.events import USER_AGENT_MAX_LENGTH

    base = f"{BROWSERS[i % len(BROWSERS)]} fill/{i} "
    # Short hex tokens (they name no crawler): one long run of letters and digits would
    # take crawlerdetect's generic "[a-z0-9\\-_]*(bot|...)" pattern milliseconds to scan.
    digest = hashlib.sha512(str(i).encode()).hexdigest() * 4
    pad = " ".join(digest[k : k + 8] for k in range(0, len(digest), 8))
    return (base + pad)[:USER_AGENT_MAX_LENGTH]


def _ipv6(i: int) -> str:
    return f"2001:db8:{i >> 16 & 0xFFFF:x}:{i & 0xFFFF:x}:1234:5678:9abc:def0"


def _fill_throttle() -> None:
    from django_pageviews.conf import conf
    from django_pageviews.throttle import MAX_ENTRIES, throttle

    seconds = conf.THROTTLE_SECONDS
    for i in range(MAX_ENTRIES * THROTTLE_FILL):
        throttle.allow(f"{0xF111 << 112 | i:032x}", seconds)  # a throttle key's form


def _fill_user_agents() -> None:
    from django_pageviews.bots import CACHE_SIZE, is_bot

    for i in range(CACHE_SIZE):
        is_bot(_user_agent(i))


def _fill_subsets() -> None:
    from django_pageviews.bots import _detector
    from django_pageviews.crawlers import REGEX_CACHE_SIZE, SUBSET_LIMIT

    patterns = _detector().exclusions
    choose = random.Random(0)
    for _ in range(REGEX_CACHE_SIZE):
        subset = choose.sample(range(len(patterns.patterns)), SUBSET_LIMIT)
        patterns._regex(tuple(sorted(subset)))


def _fill_patterns() -> None:
    from django_pageviews.bots import _detector

    for patterns in (_detector().crawlers, _detector().exclusions):
        for i in range(len(patterns.patterns)):
            patterns._pattern(i)


def _fill_lru(func: Any, make: Callable[[int], Any]) -> Callable[[], None]:
    def fill() -> None:
        for i in range(func.cache_info().maxsize):
            func(make(i))

    return fill


def _fill_keyed() -> None:
    from django_pageviews.privacy import _keyed

    for i in range(_keyed.cache_info().maxsize):
        _keyed(hashlib.sha256(str(i).encode()).digest())


def _lru(func: Any) -> tuple[Callable[[], int], Callable[[], int]]:
    return (lambda: func.cache_info().maxsize), (lambda: func.cache_info().currsize)


def _caches() -> list[Cache]:
    """The throttle table first; the crawler patterns before the user agents' verdicts,
    which reuse them."""
    from django_pageviews import bots, client_ip, privacy, raw_rows
    from django_pageviews.throttle import MAX_ENTRIES, throttle

    detector = bots._detector()
    return [
        Cache(
            "throttle.throttle",
            "a throttle key seen within PAGEVIEW_THROTTLE_SECONDS (expired ones go)",
            lambda: MAX_ENTRIES,
            lambda: len(throttle._until),
            _fill_throttle,
        ),
        Cache(
            "crawlers PatternSet._single (crawlers, exclusions)",
            "one crawlerdetect pattern, compiled",
            lambda: len(detector.crawlers.patterns) + len(detector.exclusions.patterns),
            lambda: sum(
                p is not None for s in (detector.crawlers, detector.exclusions) for p in s._single
            ),
            _fill_patterns,
        ),
        Cache(
            "crawlers PatternSet._regex (exclusions)",
            "a regex of up to SUBSET_LIMIT browser-token patterns",
            *_lru(detector.exclusions._regex),
            _fill_subsets,
        ),
        Cache(
            "bots.is_bot + crawlers CrawlerMatcher._search",
            "a user agent's verdict; the same for what is left of it without browser tokens",
            *_lru(bots.is_bot),
            _fill_user_agents,
        ),
        Cache(
            "client_ip.parse_ip",
            "a raw address and its normal form",
            *_lru(client_ip.parse_ip),
            _fill_lru(client_ip.parse_ip, _ipv6),
        ),
        Cache(
            "client_ip._in_trusted_networks",
            "whether an address is a trusted proxy",
            *_lru(client_ip._in_trusted_networks),
            _fill_lru(client_ip._in_trusted_networks, _ipv6),
        ),
        Cache(
            "privacy._anonymize",
            "an IPv6 address and its /48",
            *_lru(privacy._anonymize),
            _fill_lru(privacy._anonymize, _ipv6),
        ),
        Cache(
            "privacy._keyed",
            "a day's salt, as a keyed hash",
            *_lru(privacy._keyed),
            _fill_keyed,
        ),
        Cache(
            "raw_rows._ip_value (writes)",
            "a stored address as its column takes it",
            *_lru(raw_rows._ip_value),
            _fill_lru(raw_rows._ip_value, _ipv6),
        ),
    ]


def fill() -> None:
    """Every cache of this process at its bound. The throttle table last: its keys live
    PAGEVIEW_THROTTLE_SECONDS from then on, and the first views find them all."""
    caches = _caches()
    for cache in [*caches[1:], caches[0]]:
        cache.fill()


def sizes() -> dict[str, list[Any]]:
    """name -> [entries, bound, what an entry is] of every cache of this process."""
    return {c.name: [c.size(), c.bound(), c.holds] for c in _caches()}


def buffers() -> dict[str, int]:
    """The settings that bound the views waiting in a process, at their defaults."""
    from django_pageviews.conf import PageViewSettings

    return {
        f"PAGEVIEW_{name}": getattr(PageViewSettings, name).default
        for name in ("LOCAL_QUEUE_SIZE", "MAX_BUFFER_SIZE")
    }


def event_bytes(views: int = 10_000) -> float:
    """Bytes one view holds while it waits (an event as the middleware builds it: its own
    strings, as a request's are)."""
    from django_pageviews.events import PK, PageViewEvent, Target

    def event(i: int) -> PageViewEvent:
        return PageViewEvent(
            event_id=f"{i:032x}",
            timestamp=time.time(),
            target=Target(f"/articles/{i}/", "article-detail", "tests.article", PK, str(i)),
            ip_address=f"10.0.{i % 256}.0",
            user_agent=_user_agent(i)[:130],  # a browser's length
            visitor_hash="",
            client_ip=f"10.0.{i % 256}.{i % 200}",
            throttle_key=f"{i:032x}",
        )

    before = _traced()
    held = [event(i) for i in range(views)]
    after = _traced()
    del held
    return (after - before) / views


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure() -> dict[str, Any]:
    """Each cache filled in turn, with the bytes it added (traced by tracemalloc: every
    Python object and table, which is what the caches are made of)."""
    tracemalloc.start()
    rows = []
    for cache in _caches():
        before = _traced()
        started = time.perf_counter()
        cache.fill()
        rows.append(
            {
                "name": cache.name,
                "holds": cache.holds,
                "bound": cache.bound(),
                "entries": cache.size(),
                "bytes": _traced() - before,
                "seconds": time.perf_counter() - started,
            }
        )
    result = {"caches": rows, "event_bytes": event_bytes(), "buffers": buffers()}
    tracemalloc.stop()
    return result


def main() -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    # Long enough that no key of the fill expires while a slow machine fills the table.
    os.environ.setdefault("PAGEVIEW_THROTTLE_SECONDS", "3600")
    django.setup()
    result = measure()
    if "--json" in sys.argv:
        print(json.dumps(result))
        return
    for row in result["caches"]:
        print(
            f"{row['name']:<52} {row['entries']:>8,} / {row['bound']:>8,}"
            f"  {row['bytes'] / 2**20:8.2f} MB  {row['seconds']:.1f} s"
        )
    print(f"one waiting view: {result['event_bytes']:.0f} bytes; bounds {result['buffers']}")


if __name__ == "__main__":
    main()
