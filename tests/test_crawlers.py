"""crawlers.py gives crawlerdetect's verdict: the same answer on every user agent, real
ones (the benchmark sample, both cases), their variants, and generated text."""

from __future__ import annotations

import re

import pytest
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as EXCLUSION_PATTERNS
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.user_agents import BROWSERS, CRAWLERS, browser_variants
from django_pageviews.crawlers import (
    ASCII_FOLDS,
    CrawlerMatcher,
    PatternSet,
    folded,
    required_run,
    searchable,
)

MATCHER = CrawlerMatcher()
DETECTOR = CrawlerDetect()
SAMPLE = [*BROWSERS, *CRAWLERS, *browser_variants(300)]


@pytest.mark.parametrize("user_agent", SAMPLE)
def test_same_verdict_as_crawlerdetect(user_agent: str) -> None:
    for text in (user_agent, user_agent.upper(), user_agent.lower()):
        assert MATCHER.is_crawler(text) == DETECTOR.is_crawler(text)


@pytest.mark.parametrize(
    "user_agent", ["", "   ", "ſ", "Googlebot", "GOOGLEBOT", "x", "Mozilla/5.0", "KHTML,"]
)
def test_edge_cases_as_crawlerdetect(user_agent: str) -> None:
    assert MATCHER.is_crawler(user_agent) == DETECTOR.is_crawler(user_agent)


# Text made of pieces of real user agents and of the patterns' own words, so that the
# candidates actually vary; plus any character at all.
PIECES = [w for ua in CRAWLERS[:40] + BROWSERS[:20] for w in ua.split()]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=8))
def test_generated_text_as_crawlerdetect(parts: list[str]) -> None:
    text = " ".join(parts)
    assert MATCHER.is_crawler(text) == DETECTOR.is_crawler(text)


def test_a_substitution_with_the_candidates_only_equals_the_full_one() -> None:
    exclusions = MATCHER.exclusions
    for ua in SAMPLE:
        regex = exclusions.regex(ua)
        expected = exclusions.full.sub("", ua)
        assert (regex.sub("", ua) if regex is not None else ua) == expected


def test_searchable_drops_only_a_leading_repeat_that_may_match_nothing() -> None:
    assert searchable(r"[a-z0-9\-_]*(bot|crawl)") == "(bot|crawl)"
    assert searchable(r"\w*?x") == "x"
    for kept in (r"a+b", r"^a*b", r"(a)*b", r"a{0,3}b", r"[ab]*c|d", r"Googlebot"):
        assert searchable(kept) == kept
    generic = [p for p in CRAWLER_PATTERNS if p.startswith(r"[a-z0-9\-_]*(")]
    assert generic  # crawlerdetect's generic (bot|crawl|...) pattern
    assert [searchable(p) for p in generic] == [p.removeprefix(r"[a-z0-9\-_]*") for p in generic]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab-_x1 ", max_size=30))
def test_searchable_finds_what_the_pattern_finds(text: str) -> None:
    for pattern in (r"[a-z0-9\-_]*(x1|b-)", r"a*?_", r"[ab]*x"):
        found = re.search(pattern, text, re.IGNORECASE) is not None
        assert (re.search(searchable(pattern), text, re.IGNORECASE) is not None) == found


@pytest.mark.parametrize("suffix", ["", " é", " bot", " monitoring"])
def test_long_runs_of_letters_as_crawlerdetect(suffix: str) -> None:
    # A run of letters and digits the generic pattern once scanned quadratically.
    run = "".join("acdefghijklmnpqrsuvwxyz0123456789"[i * 7 % 33] for i in range(480))
    user_agent = f"Mozilla/5.0 {run}{suffix}"
    assert MATCHER.is_crawler(user_agent) == DETECTOR.is_crawler(user_agent)


def test_required_run() -> None:
    assert required_run(r"Googlebot\/2") == "googlebot/2"
    assert required_run(r"^Ruby|Ruby\/[0-9]") == ""  # a branch: no run every match has
    assert required_run(r"(like )?Gecko(.[\d\.]*)?") == "gecko"
    assert required_run(r"ab[cd]efgh") == "efgh"


def test_the_folds_are_every_other_character_an_ascii_literal_matches() -> None:
    every = "".join(map(chr, range(128, 0x110000)))
    found = re.findall(r"[\x00-\x7f]", every, re.IGNORECASE)
    assert sorted(found) == sorted(chr(c) for c in ASCII_FOLDS)
    for c in found:
        assert re.fullmatch(re.escape(folded(c)), c, re.IGNORECASE)
    assert all(p.isascii() for p in (*CRAWLER_PATTERNS, *EXCLUSION_PATTERNS))


@pytest.mark.parametrize(
    "user_agent",
    [
        "BOTſ crawler",
        "Googlebot/2.1 (+ſ)",
        "GOOGLEBOT ı",
        "curl/8 K",
        "Mozilla/5.0 é Safari/1",
        "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 日本語",
        "\u0130nternet crawler",
    ],
)
def test_non_ascii_text_as_crawlerdetect(user_agent: str) -> None:
    for text in (user_agent, user_agent.upper(), user_agent.lower()):
        assert MATCHER.is_crawler(text) == DETECTOR.is_crawler(text)


def test_a_folded_letter_still_makes_its_pattern_a_candidate() -> None:
    patterns = PatternSet(["bots", "curl"])
    regex = patterns.regex("BOTſ")  # ſ matches s: "bots" may match, "curl" cannot
    assert regex is not None and regex is not patterns.full and regex.search("BOTſ")
    assert patterns.search("BOTſ") and not patterns.search("BOTé")


@pytest.mark.parametrize("text", ["é" + "a" * 511, "ſ" * 512, "日本語" * 170])
def test_non_ascii_text_tries_only_the_candidates(text: str) -> None:
    """Hostile text that is not ASCII no longer takes the regex of every pattern (5 ms)."""
    assert MATCHER.exclusions.regex(text) is not MATCHER.exclusions.full
    assert len(MATCHER.crawlers.candidates(folded(text))) < len(MATCHER.crawlers.patterns) // 10
    assert MATCHER.is_crawler(text) == DETECTOR.is_crawler(text)


def test_a_backreference_disables_the_subsets() -> None:
    patterns = PatternSet([r"(?P<a>ab)x(?P=a)", "cde"])
    assert patterns.regex("abxab") is patterns.full
    assert patterns.full.search("abxab") is not None


def test_short_patterns_are_always_tried() -> None:
    patterns = PatternSet(["ab", "xyzw"])
    regex = patterns.regex("zzab")
    assert regex is not None and regex.search("zzab")
    assert patterns.regex("nothing") is not None  # "ab" is always a candidate
    assert PatternSet(["xyzw"]).regex("nothing") is None


def test_many_candidates_take_the_full_regex() -> None:
    """A user agent naming many patterns compiles nothing new (hostile input)."""
    exclusions = MATCHER.exclusions
    text = " ".join(["Safari/1", "Firefox/2", " Chrome/3", "Chromium/4", "MSIE 5", "Opera/6"] * 3)
    text += " Mozilla/5 AppleWebKit/1 Trident/1 Windows NT 1 Android 1 Macintosh; Ubuntu Linux"
    text += " Intel Mac OS X 1 Gecko KHTML, CriOS/1 iPod compatible x86_64 i686 x64 X11 rv:1"
    assert len(exclusions.candidates(text.lower())) > 16
    assert exclusions.regex(text) is exclusions.full
    crawler_words = " ".join(w for ua in CRAWLERS for w in ua.split()[:1])
    assert MATCHER.is_crawler(crawler_words) == DETECTOR.is_crawler(crawler_words)
    assert MATCHER.crawlers.search(crawler_words) == (
        MATCHER.crawlers.full.search(crawler_words) is not None
    )
