"""Settings: defaults, live reads under override_settings, and cache invalidation."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from django.test import override_settings

from django_pageviews.conf import (
    PageViewSettings,
    bot_regex,
    conf,
    excluded_networks,
    excluded_paths,
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
}


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
