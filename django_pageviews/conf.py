"""Every ``PAGEVIEW_*`` setting with its default, read lazily and then cached.

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

# Values read so far. Reading an unset setting through django.conf.settings raises and
# catches an AttributeError each time (microseconds, on every request); the cache is
# dropped whenever a setting changes (override_settings sends setting_changed).
_values: dict[str, Any] = {}
# Bumped with each clear: a value read before a change is not cached after it.
_generation = 0

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
        try:
            cached: T = _values[self.name]
            return cached
        except KeyError:
            generation = _generation
            value: T = getattr(settings, self.name, self.default)
            if generation == _generation:  # else settings changed meanwhile: keep it out
                _values[self.name] = value
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
    # The longest a view waits in the in-process buffer (BUFFER_TIMEOUT, if lower, too):
    # what a SIGKILL can lose. bench/buffer_age.py measured the cost of shorter ones.
    MAX_BUFFER_AGE = _Setting[float](1.0)
    # The Redis + Celery path (PAGEVIEW_ASYNC_PROCESSING = True).
    REDIS_URL = _Setting[str | None](None)  # None: CELERY_BROKER_URL if redis://, else local
    REDIS_CLUSTER = _Setting[bool](False)  # True: REDIS_URL names a node of a Redis Cluster
    # (host, port) of each Sentinel; REDIS_URL's host then names the service they monitor.
    REDIS_SENTINELS = _Setting[list[tuple[str, int]]]([])
    REDIS_SOCKET_TIMEOUT = _Setting[float](0.5)
    REDIS_CONNECT_TIMEOUT = _Setting[float](0.5)
    KEY_PREFIX = _Setting[str]("pageviews")
    # Redis buffers (each its own hash tag) that producers spread views over (decision 42).
    BUFFER_SHARDS = _Setting[int](1)
    SHIP_INTERVAL = _Setting[float](0.05)  # seconds between shipments to Redis
    SHIP_BATCH_SIZE = _Setting[int](500)  # events per shipment at most
    LOCAL_QUEUE_SIZE = _Setting[int](50_000)  # events waiting per process/loop at most
    REDIS_FALLBACK = _Setting[str]("spill")  # "spill" to the database path, or "drop"
    FLUSH_TIME_BUDGET = _Setting[float](50)  # seconds one flush task may drain
    # Records (raw events and count fields) a drain writes per transaction at most, in
    # whole claims: a backlog of small claims is written with one commit per group.
    DRAIN_TRANSACTION_SIZE = _Setting[int](10_000)
    EARLY_FLUSH_THRESHOLD = _Setting[int](10_000)  # pending views that trigger a flush
    EARLY_FLUSH_INTERVAL = _Setting[float](10)  # at most one early flush per interval
    PROCESSED_BATCH_RETENTION_DAYS = _Setting[int](7)
    # Storage: the alias of every table of the app (routers.py); None: the site's routers.
    DATABASE = _Setting[str | None](None)
    # Days raw rows are kept (clean_pageviews' default, pageviews_partitions' drops); None:
    # kept until deleted by hand. Totals are kept whatever this says.
    RAW_RETENTION_DAYS = _Setting[int | None](None)
    RAW_PARTITIONS = _Setting[bool](False)  # PostgreSQL: raw rows in monthly partitions
    # Privacy and client addresses.
    RESPECT_DNT = _Setting[bool](False)  # skip views sent with DNT: 1 or Sec-GPC: 1
    COUNT_VISITORS = _Setting[bool](True)  # unique visitors per day (visitors.py)
    ANONYMIZE_IP = _Setting[str]("truncate")  # without STORE_IP: "truncate" or "omit"
    TRUSTED_PROXIES = _Setting[list[str]]([])  # networks whose forwarding header is believed
    PROXY_COUNT = _Setting[int](0)  # or: this many proxies append to the header
    CLIENT_IP_HEADER = _Setting[str]("X-Forwarded-For")
    # URL hygiene.
    TRACK_QUERY_STRING = _Setting[list[str]]([])  # query parameters kept in the URL
    MAX_NEW_URLS_PER_DAY = _Setting[int](100_000)  # distinct URLs per day; 0: no cap
    TRAILING_SLASH = _Setting[str | None](None)  # "append", "strip", "keep"; None: APPEND_SLASH
    # Stats API and public counters (django_pageviews.urls).
    PUBLIC_COUNTERS = _Setting[list[str]]([])  # URL path patterns and model labels; []: off
    COUNTER_MAX_AGE = _Setting[int](300)  # seconds a CDN may keep a counter (public)
    API_MAX_AGE = _Setting[int](60)  # seconds a client may keep an API answer (private)
    # Beacon ({% pageview_beacon %}): how long a page's token counts, in seconds. Longer
    # than any cache keeps a copy of the page (a CDN's TTL), or its later copies count none.
    BEACON_MAX_AGE = _Setting[int](86_400)
    # Prometheus metrics (django_pageviews.metrics.urls): addresses that may scrape
    # without a token.
    METRICS_ALLOWED_IPS = _Setting[list[str]]([])

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
def trusted_networks() -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in conf.TRUSTED_PROXIES)


@cache
def metrics_networks() -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in conf.METRICS_ALLOWED_IPS)


@cache
def excluded_paths() -> tuple[str, ...]:
    return tuple(conf.EXCLUDE_PATHS)


def redis_url() -> str:
    if conf.REDIS_URL:
        return conf.REDIS_URL
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if broker.startswith(("redis://", "rediss://", "unix://")):
        return broker
    return "redis://localhost:6379/0"


@receiver(setting_changed)
def _clear_caches(*, setting: str, **kwargs: object) -> None:
    global _generation
    if setting.startswith(PREFIX):
        _generation += 1
        _values.clear()
        bot_regex.cache_clear()
        excluded_networks.cache_clear()
        excluded_paths.cache_clear()
        trusted_networks.cache_clear()
        metrics_networks.cache_clear()
