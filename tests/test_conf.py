"""Settings: defaults, live reads under override_settings, and cache invalidation."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_pageviews.conf import (
    PageViewSettings,
    bot_regex,
    conf,
    excluded_networks,
    excluded_paths,
    redis_url,
)

DEFAULT_BOT_PATTERNS = ["bot", "crawl", "spider", "slurp", "search", "fetch", "scan"]

DEFAULTS: dict[str, Any] = {
    "THROTTLE_SECONDS": 20,
    "BATCH_SIZE": 100,
    "BUFFER_TIMEOUT": 300,
    "ASYNC_PROCESSING": False,
    "BOT_PATTERNS": DEFAULT_BOT_PATTERNS,
    "EXCLUDE_ADMIN": True,
    "EXCLUDE_AJAX": True,
    "EXCLUDE_PATHS": ["/static/", "/media/"],
    "EXCLUDE_IP_ADDRESSES": [],
    "STORE_RAW": True,
    "STORE_IP": False,
    "MAX_BUFFER_SIZE": 100_000,
    "MAX_BUFFER_AGE": 1.0,
    "REDIS_URL": None,
    "REDIS_CLUSTER": False,
    "REDIS_SENTINELS": [],
    "REDIS_SOCKET_TIMEOUT": 0.5,
    "REDIS_CONNECT_TIMEOUT": 0.5,
    "KEY_PREFIX": "pageviews",
    "BUFFER_SHARDS": 1,
    "SHIP_INTERVAL": 0.05,
    "SHIP_BATCH_SIZE": 500,
    "LOCAL_QUEUE_SIZE": 50_000,
    "REDIS_FALLBACK": "spill",
    "FLUSH_TIME_BUDGET": 50,
    "DRAIN_TRANSACTION_SIZE": 10_000,
    "EARLY_FLUSH_THRESHOLD": 10_000,
    "EARLY_FLUSH_INTERVAL": 10,
    "PROCESSED_BATCH_RETENTION_DAYS": 7,
    "DATABASE": None,
    "RAW_RETENTION_DAYS": None,
    "RAW_PARTITIONS": False,
    "RESPECT_DNT": False,
    "COUNT_VISITORS": True,
    "ANONYMIZE_IP": "truncate",
    "TRUSTED_PROXIES": [],
    "PROXY_COUNT": 0,
    "CLIENT_IP_HEADER": "X-Forwarded-For",
    "TRACK_QUERY_STRING": [],
    "MAX_NEW_URLS_PER_DAY": 100_000,
    "TRAILING_SLASH": None,
    "PUBLIC_COUNTERS": [],
    "COUNTER_MAX_AGE": 300,
    "API_MAX_AGE": 60,
    "BEACON_MAX_AGE": 86_400,
    "METRICS_ALLOWED_IPS": [],
}

LOCAL_REDIS = "redis://localhost:6379/0"


@pytest.mark.parametrize(("name", "expected"), sorted(DEFAULTS.items()))
def test_default(name: str, expected: Any) -> None:
    value = getattr(conf, name)
    assert value == expected
    assert type(value) is type(expected)
    assert PageViewSettings.default(name) == expected
    assert PageViewSettings.default(f"PAGEVIEW_{name}") == expected


def test_every_setting_has_a_tested_default() -> None:
    assert sorted(PageViewSettings.names()) == sorted(f"PAGEVIEW_{n}" for n in DEFAULTS)


def test_names_lists_each_full_setting_name_once() -> None:
    assert PageViewSettings.names() == [
        "PAGEVIEW_THROTTLE_SECONDS",
        "PAGEVIEW_BATCH_SIZE",
        "PAGEVIEW_BUFFER_TIMEOUT",
        "PAGEVIEW_ASYNC_PROCESSING",
        "PAGEVIEW_BOT_PATTERNS",
        "PAGEVIEW_EXCLUDE_ADMIN",
        "PAGEVIEW_EXCLUDE_AJAX",
        "PAGEVIEW_EXCLUDE_PATHS",
        "PAGEVIEW_EXCLUDE_IP_ADDRESSES",
        "PAGEVIEW_STORE_RAW",
        "PAGEVIEW_STORE_IP",
        "PAGEVIEW_MAX_BUFFER_SIZE",
        "PAGEVIEW_MAX_BUFFER_AGE",
        "PAGEVIEW_REDIS_URL",
        "PAGEVIEW_REDIS_CLUSTER",
        "PAGEVIEW_REDIS_SENTINELS",
        "PAGEVIEW_REDIS_SOCKET_TIMEOUT",
        "PAGEVIEW_REDIS_CONNECT_TIMEOUT",
        "PAGEVIEW_KEY_PREFIX",
        "PAGEVIEW_BUFFER_SHARDS",
        "PAGEVIEW_SHIP_INTERVAL",
        "PAGEVIEW_SHIP_BATCH_SIZE",
        "PAGEVIEW_LOCAL_QUEUE_SIZE",
        "PAGEVIEW_REDIS_FALLBACK",
        "PAGEVIEW_FLUSH_TIME_BUDGET",
        "PAGEVIEW_DRAIN_TRANSACTION_SIZE",
        "PAGEVIEW_EARLY_FLUSH_THRESHOLD",
        "PAGEVIEW_EARLY_FLUSH_INTERVAL",
        "PAGEVIEW_PROCESSED_BATCH_RETENTION_DAYS",
        "PAGEVIEW_DATABASE",
        "PAGEVIEW_RAW_RETENTION_DAYS",
        "PAGEVIEW_RAW_PARTITIONS",
        "PAGEVIEW_RESPECT_DNT",
        "PAGEVIEW_COUNT_VISITORS",
        "PAGEVIEW_ANONYMIZE_IP",
        "PAGEVIEW_TRUSTED_PROXIES",
        "PAGEVIEW_PROXY_COUNT",
        "PAGEVIEW_CLIENT_IP_HEADER",
        "PAGEVIEW_TRACK_QUERY_STRING",
        "PAGEVIEW_MAX_NEW_URLS_PER_DAY",
        "PAGEVIEW_TRAILING_SLASH",
        "PAGEVIEW_PUBLIC_COUNTERS",
        "PAGEVIEW_COUNTER_MAX_AGE",
        "PAGEVIEW_API_MAX_AGE",
        "PAGEVIEW_BEACON_MAX_AGE",
        "PAGEVIEW_METRICS_ALLOWED_IPS",
    ]


def test_override_settings_is_seen_immediately() -> None:
    assert conf.THROTTLE_SECONDS == 20
    with override_settings(PAGEVIEW_THROTTLE_SECONDS=5, PAGEVIEW_STORE_IP=True):
        assert conf.THROTTLE_SECONDS == 5
        assert conf.STORE_IP is True
        with override_settings(PAGEVIEW_THROTTLE_SECONDS=0):
            assert conf.THROTTLE_SECONDS == 0
        assert conf.THROTTLE_SECONDS == 5
    assert conf.THROTTLE_SECONDS == 20
    assert conf.STORE_IP is False


@override_settings(PAGEVIEW_BATCH_SIZE=7)
def test_override_settings_as_decorator() -> None:
    assert conf.BATCH_SIZE == 7


def test_bot_regex_default_matches_each_pattern_case_insensitively() -> None:
    regex = bot_regex()
    assert regex is not None
    assert regex is bot_regex()  # cached
    assert regex.flags & re.IGNORECASE
    for pattern in DEFAULT_BOT_PATTERNS:
        assert regex.search(f"Mozilla/5.0 (compatible; X{pattern.upper()}Y/1.0)") is not None
    assert regex.search("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0") is None


def test_bot_regex_follows_override_settings() -> None:
    default = bot_regex()
    assert default is not None
    assert default.search("Googlebot/2.1") is not None

    with override_settings(PAGEVIEW_BOT_PATTERNS=["a.b"]):
        regex = bot_regex()
        assert regex is not None
        assert regex is not default
        # Patterns are literal text, not regular expressions.
        assert regex.search("xA.By") is not None
        assert regex.search("axb") is None
        assert regex.search("Googlebot/2.1") is None

    restored = bot_regex()
    assert restored is not None
    assert restored.search("Googlebot/2.1") is not None
    assert restored.search("xa.by") is None


@pytest.mark.parametrize("patterns", [[], (), [""], ["", ""]])
def test_bot_regex_is_none_without_patterns(patterns: Any) -> None:
    with override_settings(PAGEVIEW_BOT_PATTERNS=patterns):
        assert bot_regex() is None
    assert bot_regex() is not None


def test_excluded_networks_follows_override_settings() -> None:
    assert excluded_networks() == ()
    with override_settings(
        PAGEVIEW_EXCLUDE_IP_ADDRESSES=["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    ):
        assert excluded_networks() == (
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("192.0.2.7/32"),
            ipaddress.ip_network("2001:db8::/32"),
        )
    assert excluded_networks() == ()


def test_excluded_networks_accepts_host_bits_set() -> None:
    with override_settings(PAGEVIEW_EXCLUDE_IP_ADDRESSES=["10.1.2.3/8"]):
        assert excluded_networks() == (ipaddress.ip_network("10.0.0.0/8"),)


def test_excluded_paths_follows_override_settings() -> None:
    assert excluded_paths() == ("/static/", "/media/")
    with override_settings(PAGEVIEW_EXCLUDE_PATHS=["/health/"]):
        assert excluded_paths() == ("/health/",)
    assert excluded_paths() == ("/static/", "/media/")


def test_unrelated_setting_change_keeps_caches() -> None:
    regex = bot_regex()
    paths = excluded_paths()
    with override_settings(DEBUG=True):
        assert bot_regex() is regex
        assert excluded_paths() is paths


# redis_url(): PAGEVIEW_REDIS_URL, else a Redis CELERY_BROKER_URL, else the local server.


@pytest.mark.parametrize(
    "broker",
    [None, "redis://broker:6379/2", "amqp://guest@rabbit//"],
)
def test_redis_url_setting_wins(broker: str | None) -> None:
    with override_settings(PAGEVIEW_REDIS_URL="redis://buffer:6380/3", CELERY_BROKER_URL=broker):
        assert redis_url() == "redis://buffer:6380/3"


@pytest.mark.parametrize(
    "broker",
    [
        "redis://broker:6379/2",
        "redis://:secret@broker:6379/0",
        "rediss://broker:6380/0?ssl_cert_reqs=required",
        "unix:///run/redis/redis.sock?db=4",
    ],
)
def test_redis_url_falls_back_to_a_redis_broker(broker: str) -> None:
    with override_settings(PAGEVIEW_REDIS_URL=None, CELERY_BROKER_URL=broker):
        assert redis_url() == broker


@pytest.mark.parametrize(
    "broker",
    ["amqp://guest:guest@rabbit:5672//", "pyamqp://rabbit//", "sqs://", "", None],
)
def test_redis_url_defaults_to_local_redis_without_a_redis_broker(broker: str | None) -> None:
    with override_settings(PAGEVIEW_REDIS_URL=None, CELERY_BROKER_URL=broker):
        assert redis_url() == LOCAL_REDIS


def test_redis_url_defaults_to_local_redis_without_any_broker_setting() -> None:
    with override_settings(PAGEVIEW_REDIS_URL=None, CELERY_BROKER_URL="redis://broker:6379/2"):
        del settings.PAGEVIEW_REDIS_URL
        del settings.CELERY_BROKER_URL
        assert not hasattr(settings, "CELERY_BROKER_URL")
        assert conf.REDIS_URL is None
        assert redis_url() == LOCAL_REDIS


def test_redis_url_follows_override_settings() -> None:
    with override_settings(PAGEVIEW_REDIS_URL=None, CELERY_BROKER_URL=None):
        assert redis_url() == LOCAL_REDIS
        with override_settings(CELERY_BROKER_URL="redis://broker:6379/2"):
            assert redis_url() == "redis://broker:6379/2"
            with override_settings(PAGEVIEW_REDIS_URL="unix:///tmp/redis.sock"):
                assert redis_url() == "unix:///tmp/redis.sock"
            assert redis_url() == "redis://broker:6379/2"
        assert redis_url() == LOCAL_REDIS
