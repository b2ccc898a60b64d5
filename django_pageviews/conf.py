"""Every ``PAGEVIEW_*`` setting with its default, read lazily.

Reading ``django.conf.settings`` on each access (rather than copying values at import
time) is what makes ``override_settings`` work; whatever is costly to derive from a
setting is cached below and the cache is dropped on ``setting_changed``.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

T = TypeVar("T")

PREFIX = "PAGEVIEW_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Setting(Generic[T]):
    """A typed ``PAGEVIEW_<NAME>`` setting that falls back to its default."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = PREFIX + name

    @overload
    def __get__(self, instance: None, owner: type) -> _Setting[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> T | _Setting[T]:
        if instance is None:
            return self
        value: T = getattr(settings, self.name, self.default)
        return value


class PageViewSettings:
    """The app's settings; one attribute per ``PAGEVIEW_*`` name, without the prefix."""

    # Settings of the original 0.2.x package, with its defaults.
    THROTTLE_SECONDS = _Setting[int](20)
    BATCH_SIZE = _Setting[int](100)
    BUFFER_TIMEOUT = _Setting[float](300)
    ASYNC_PROCESSING = _Setting[bool](False)
    BOT_PATTERNS = _Setting[list[str]](
        ["bot", "crawl", "spider", "slurp", "search", "fetch", "scan"]
    )
    EXCLUDE_ADMIN = _Setting[bool](True)
    EXCLUDE_AJAX = _Setting[bool](True)
    EXCLUDE_PATHS = _Setting[list[str]](["/static/", "/media/"])
    EXCLUDE_IP_ADDRESSES = _Setting[list[str]]([])
    # Added by this package.
    STORE_RAW = _Setting[bool](True)
    STORE_IP = _Setting[bool](False)
    MAX_BUFFER_SIZE = _Setting[int](100_000)

    @classmethod
    def names(cls) -> list[str]:
        """Full setting names (``PAGEVIEW_...``), for checks and docs."""
        return [v.name for v in vars(cls).values() if isinstance(v, _Setting)]

    @classmethod
    def default(cls, name: str) -> Any:
        setting = vars(cls)[name.removeprefix(PREFIX)]
        assert isinstance(setting, _Setting)
        return setting.default


conf = PageViewSettings()


@cache
def bot_regex() -> re.Pattern[str] | None:
    """One compiled alternation: a single regex scan beats a Python loop per pattern."""
    patterns = [p for p in conf.BOT_PATTERNS if p]
    if not patterns:
        return None
    return re.compile("|".join(re.escape(p) for p in patterns), re.IGNORECASE)


@cache
def excluded_networks() -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in conf.EXCLUDE_IP_ADDRESSES)


@cache
def excluded_paths() -> tuple[str, ...]:
    return tuple(conf.EXCLUDE_PATHS)


@receiver(setting_changed)
def _clear_caches(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(PREFIX):
        bot_regex.cache_clear()
        excluded_networks.cache_clear()
        excluded_paths.cache_clear()
