"""Whether a user agent is a crawler: crawlerdetect's verdict and PAGEVIEW_BOT_PATTERNS.

Is this user agent a crawler? A maintained crawler database (crawlerdetect, the Python
port of JayBizzle/Crawler-Detect), plus the site's own PAGEVIEW_BOT_PATTERNS.

crawlerdetect's own matching costs 170-250 µs for a user agent it has not seen, and a busy
site sees thousands of distinct ones a day: its verdict is computed by crawlers.py, the
same answer in a few microseconds. Real traffic still repeats user agents, so answers are
cached (LRU) and a repeat costs a dictionary lookup.
"""

from __future__ import annotations

from functools import cache, lru_cache

from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import bot_regex, conf
from .crawlers import CrawlerMatcher

CACHE_SIZE = 8192


@cache
def _detector() -> CrawlerMatcher:
    return CrawlerMatcher()


@cache
def _plain_patterns() -> tuple[str, ...] | None:
    """PAGEVIEW_BOT_PATTERNS lower-cased, if all are ASCII: on an ASCII user agent,
    substring tests then answer what the case-insensitive regex answers, several times
    faster. (Non-ASCII letters have case foldings that lower() does not reproduce.)"""
    patterns = tuple(p.lower() for p in conf.BOT_PATTERNS if p)
    return patterns if all(p.isascii() for p in patterns) else None


def _site_pattern_matches(user_agent: str) -> bool:
    plain = _plain_patterns()
    if plain is not None and user_agent.isascii():
        lowered = user_agent.lower()
        return any(p in lowered for p in plain)
    regex = bot_regex()
    return regex is not None and regex.search(user_agent) is not None


@lru_cache(maxsize=CACHE_SIZE)
def is_bot(user_agent: str) -> bool:
    """True for a crawler, and for a missing user agent (browsers always send one)."""
    if not user_agent.strip():
        return True
    return _site_pattern_matches(user_agent) or _detector().is_crawler(user_agent)


@receiver(setting_changed)
def _clear(*, setting: str, **kwargs: object) -> None:
    if setting == "PAGEVIEW_BOT_PATTERNS":
        is_bot.cache_clear()
        _plain_patterns.cache_clear()
