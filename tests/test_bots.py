"""bots.is_bot: the site's patterns as substring tests give the regex's answer; a new
setting takes effect."""

from __future__ import annotations

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from django_pageviews.bots import _site_pattern_matches, is_bot
from django_pageviews.conf import bot_regex

WORDS = ["bot", "Crawl", "SPIDER", "Mozilla/5.0", "Kelvin", "ſlurp", "K", "x"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS) | st.text(max_size=4), max_size=6),
    st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=3), min_size=1, max_size=4),
)
def test_site_patterns_as_the_regex(parts: list[str], patterns: list[str]) -> None:
    user_agent = " ".join(parts)
    with override_settings(PAGEVIEW_BOT_PATTERNS=patterns):
        regex = bot_regex()
        expected = regex is not None and regex.search(user_agent) is not None
        assert _site_pattern_matches(user_agent) == expected


@pytest.mark.parametrize(
    ("user_agent", "patterns", "expected"),
    [
        ("MyMonitor/1.0", ["monitor"], True),
        ("MyMonitor/1.0", ["nothing"], False),
        ("Kelvin \u212a", ["k"], True),  # non-ASCII: the regex decides (KELVIN SIGN folds to k)
        ("ſ", ["s"], True),  # LONG S folds to s: the regex decides
        ("abc", [], False),
    ],
)
def test_site_patterns(user_agent: str, patterns: list[str], expected: bool) -> None:
    with override_settings(PAGEVIEW_BOT_PATTERNS=patterns):
        assert _site_pattern_matches(user_agent) is expected


def test_a_changed_setting_takes_effect() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AcmeWatcher/2.0"
    with override_settings(PAGEVIEW_BOT_PATTERNS=["acmewatcher"]):
        assert is_bot(ua)
    with override_settings(PAGEVIEW_BOT_PATTERNS=["other"]):
        assert not is_bot(ua)


def test_an_empty_user_agent_is_a_bot() -> None:
    assert is_bot("")
    assert is_bot("   ")
