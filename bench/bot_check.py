"""What the bot check costs per request: a user agent seen for the first time versus a
repeated one (LRU cache hit), with the package's matcher (crawlers.py) and with
crawlerdetect's own, which it replaced.

    python -m bench.bot_check

bench/request_cost.py reports the same first-sight figure inside its scenario; this
script is the quick look.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

N = 5_000


def per_call_us(check: Callable[[str], object], user_agents: list[str]) -> float:
    started = time.perf_counter()
    for ua in user_agents:
        check(ua)
    return (time.perf_counter() - started) / len(user_agents) * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from crawlerdetect import CrawlerDetect

    from bench.user_agents import CRAWLERS, browser_variants
    from django_pageviews.bots import _detector, is_bot

    browsers = browser_variants(N)
    crawlers = [f"{CRAWLERS[i % len(CRAWLERS)]} build/{i}" for i in range(N)]
    print("| user agent | matcher | first sight, µs/call | repeated (cached), µs/call |")
    print("|---|---|---:|---:|")
    for name, sample in (("browser", browsers), ("crawler", crawlers)):
        # Distinct user agents: every call misses every cache.
        is_bot.cache_clear()
        _detector.cache_clear()
        _detector()  # built once per process, as by the first request
        uncached = per_call_us(is_bot, sample)
        cached = per_call_us(is_bot, [sample[0]] * N)
        print(f"| {name} | bots.is_bot | {uncached:.1f} | {cached:.2f} |")
        detector = CrawlerDetect()
        few = sample[: N // 10]
        old = per_call_us(detector.is_crawler, few)
        print(f"| {name} | crawlerdetect | {old:.1f} | |")


if __name__ == "__main__":
    main()
