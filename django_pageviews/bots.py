"""Is this user agent a crawler? A maintained crawler database (crawlerdetect, the Python
port of JayBizzle/Crawler-Detect), plus the site's own PAGEVIEW_BOT_PATTERNS.

Matching a user agent against the database costs tens of microseconds; real traffic
repeats a small set of user agents, so answers are cached (LRU) and a repeat costs a
dictionary lookup.
"""

from __future__ import annotations

from functools import cache, lru_cache

from crawlerdetect import CrawlerDetect
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import bot_regex

CACHE_SIZE = 4096


@cache
def _detector() -> CrawlerDetect:
    return CrawlerDetect()


@lru_cache(maxsize=CACHE_SIZE)
def is_bot(user_agent: str) -> bool:
    """True for a crawler, and for a missing user agent (browsers always send one)."""
    if not user_agent.strip():
        return True
    regex = bot_regex()
    if regex is not None and regex.search(user_agent):
        return True
    return bool(_detector().isCrawler(user_agent))


@receiver(setting_changed)
def _clear(*, setting: str, **kwargs: object) -> None:
    if setting == "PAGEVIEW_BOT_PATTERNS":
        is_bot.cache_clear()
