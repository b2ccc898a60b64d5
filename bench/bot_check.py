"""What the bot check costs per request: a user agent seen for the first time (crawler
database lookup) versus a repeated one (LRU cache hit).

    .venv/bin/python bench/bot_check.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

N = 5_000
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def per_call_us(user_agents: list[str]) -> float:
    from django_pageviews.bots import is_bot

    started = time.perf_counter()
    for ua in user_agents:
        is_bot(ua)
    return (time.perf_counter() - started) / len(user_agents) * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django_pageviews.bots import _detector, is_bot

    _detector()  # compile the database once, as the first request of a process does
    rows = []
    for name, ua in (("browser", BROWSER), ("crawler", CRAWLER)):
        # Distinct user agents: every call misses both caches (ours and crawlerdetect's).
        is_bot.cache_clear()
        _detector()._cached_check.cache_clear()
        uncached = per_call_us([f"{ua} build/{i}" for i in range(N)])
        is_bot.cache_clear()
        is_bot(ua)
        cached = per_call_us([ua] * N)
        rows.append((name, uncached, cached))
    print("| user agent | first sight, µs/call | repeated (cached), µs/call |")
    print("|---|---:|---:|")
    for name, uncached, cached in rows:
        print(f"| {name} | {uncached:.1f} | {cached:.2f} |")


if __name__ == "__main__":
    main()
