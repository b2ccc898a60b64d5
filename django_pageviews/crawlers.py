"""crawlerdetect's verdict on a user agent, reached in microseconds instead of hundreds.

crawlerdetect strips its exclusions (browser tokens: ``Safari/537.36``, ``Mozilla/5.0``...)
with one regex, then searches what is left with one alternation of ~1,500 crawler
patterns, compiled case-insensitive. Python's regex engine tries every alternative at
every position: 170-250 µs for each user agent it has not seen, which on a busy site's long
tail of user agents was most of what tracking cost a request (docs/profiles/).

The answer is the same when only the patterns that can match are tried. Almost every
pattern holds a run of plain characters that any match must contain (``Googlebot``,
``curl/``); a pattern whose run is absent from the lower-cased user agent cannot match
anywhere in it, and dropping patterns that cannot match changes neither a search (does any
alternative match?) nor a substitution (each position still takes the first alternative
that matches there, in the original order). So the few candidates are found with substring
tests: a search tries them one by one (each pattern compiled once, on its own), and a
substitution, whose result depends on the order of the alternatives, uses one regex of
them (cached: browsers share a handful of sets). Patterns without such a run are always
tried. Every pattern is ASCII, and case-insensitive matching lets four other characters
match an ASCII letter (``ſ`` matches ``s``; ASCII_FOLDS): those are folded before the
substring tests, so text that is not ASCII is checked as fast.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]

from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as EXCLUSION_PATTERNS

GRAM = 3  # literal runs shorter than this are not indexed: the pattern is always tried
SCAN_LIMIT = 100  # up to this many patterns, test each run; beyond, index runs by trigram
# Regexes of a few candidates are compiled and cached (browsers share a handful of sets);
# text with more candidates than this gets the full regex, so that hostile user agents
# naming many patterns can neither fill memory with regexes nor make every request
# compile one.
SUBSET_LIMIT = 16
REGEX_CACHE_SIZE = 256
AGENT_CACHE_SIZE = 8192
BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
# The characters other than ASCII that a case-insensitive ASCII literal matches (Python's
# simple case folding; tests/test_crawlers.py finds them by scanning every code point).
ASCII_FOLDS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def folded(text: str) -> str:
    """``text`` lower-cased, with ASCII_FOLDS applied first: an ASCII run that a pattern
    matches case-insensitively in ``text`` is a substring of it."""
    return text.translate(ASCII_FOLDS).lower()


# A leading repeat of one character or class that may match nothing: ``[a-z0-9\-_]*`` in
# front of crawlerdetect's generic ``(bot|crawl|...)``.
OPTIONAL_PREFIX = re.compile(r"(?:\[(?:\\.|[^\]\\])+\]|\\.|[^\\()\[|^$*+?{])[*?][?+]?")


def searchable(pattern: str) -> str:
    """``pattern`` without a leading repeat that may match nothing: for a search (does it
    match anywhere?) the answer is the same, since the rest matches wherever the whole
    does. The repeat made the search quadratic: at each position of a long run of letters
    it ran to the end of the run and back (20 ms for a 512-character user agent; a
    request's worth of CPU a hostile client could ask for every time)."""
    prefix = OPTIONAL_PREFIX.match(pattern)
    if prefix is None or "|" in _top_level(pattern):
        return pattern
    first = sre_parser.parse(pattern)[0]
    if first[0] in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and first[1][0] == 0:
        return pattern[prefix.end() :]
    return pattern


def _top_level(pattern: str) -> str:
    """``pattern`` with its groups and classes removed: what is left shows a top-level
    alternation, where a prefix belongs to the first branch only."""
    return re.sub(
        r"\[(?:\\.|[^\]\\])+\]|\\.", "", re.sub(r"\((?:[^()]|\([^()]*\))*\)", "", pattern)
    )


def required_run(pattern: str) -> str:
    """The longest run of ASCII characters every match of ``pattern`` contains, lower-cased
    ("" if none). Only top-level literals count: they are in every match, in sequence; any
    other element (a class, a repeat, a group, a branch) ends a run."""
    best = run = ""
    for op, value in sre_parser.parse(pattern):
        if op is sre_constants.LITERAL and value < 128:
            run += chr(value).lower()
            if len(run) > len(best):
                best = run
        else:
            run = ""
    return best


class PatternSet:
    """An alternation of patterns (case-insensitive) that tries only the candidates."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        self.full = re.compile("(" + "|".join(self.patterns) + ")", re.IGNORECASE)
        self._always: list[int] = []
        self._runs: list[tuple[int, str]] = []
        self._by_gram: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, pattern in enumerate(self.patterns):
            run = required_run(pattern)
            if len(run) < GRAM:
                self._always.append(i)
            elif len(self.patterns) <= SCAN_LIMIT:
                self._runs.append((i, run))
            else:
                self._by_gram[run[:GRAM]].append((i, run))
        self._grams = frozenset(self._by_gram)
        self._regex = lru_cache(maxsize=REGEX_CACHE_SIZE)(self._compile)
        self._single: list[re.Pattern[str] | None] = [None] * len(self.patterns)
        # Group numbers shift in a regex of fewer patterns: a backreference would then
        # name another group. None of crawlerdetect's patterns has one; if a future one
        # does, every text gets the full regex.
        self._subsets = not any(BACKREFERENCE.search(p) for p in self.patterns)

    def candidates(self, lowered: str) -> tuple[int, ...]:
        """Indexes (in order) of the patterns that may match text whose ``folded`` form is
        ``lowered``; every other pattern cannot match it anywhere."""
        found = list(self._always)
        found += [i for i, run in self._runs if run in lowered]
        if self._grams:
            grams = {lowered[k : k + GRAM] for k in range(len(lowered) - GRAM + 1)}
            for gram in self._grams.intersection(grams):
                found += [i for i, run in self._by_gram[gram] if run in lowered]
            found.sort()
        return tuple(found)

    def regex(self, text: str) -> re.Pattern[str] | None:
        """A regex that finds and substitutes in ``text`` what ``full`` does (None:
        nothing can match)."""
        if not self._subsets:
            return self.full
        indexes = self.candidates(folded(text))
        return self.full if len(indexes) > SUBSET_LIMIT else self._regex(indexes)

    def search(self, text: str) -> bool:
        """Whether ``full`` matches somewhere in ``text``: whether one of the candidates
        does, each pattern compiled on its own (once), so nothing is compiled per set."""
        if not self._subsets:
            return self.full.search(text) is not None
        return any(self._pattern(i).search(text) for i in self.candidates(folded(text)))

    def _pattern(self, i: int) -> re.Pattern[str]:
        compiled = self._single[i]
        if compiled is None:
            compiled = self._single[i] = re.compile(self.patterns[i], re.IGNORECASE)
        return compiled

    def _compile(self, indexes: tuple[int, ...]) -> re.Pattern[str] | None:
        if not indexes:
            return None
        return re.compile("(" + "|".join(self.patterns[i] for i in indexes) + ")", re.IGNORECASE)


class CrawlerMatcher:
    """``CrawlerDetect().is_crawler(user_agent)``, the same answer, found faster."""

    def __init__(
        self,
        crawlers: Sequence[str] = CRAWLER_PATTERNS,
        exclusions: Sequence[str] = EXCLUSION_PATTERNS,
    ) -> None:
        self.crawlers = PatternSet([searchable(p) for p in crawlers])  # searched only
        self.exclusions = PatternSet(exclusions)
        # What is left once the browser tokens are gone repeats far more than the user
        # agents do (versions and builds are stripped): its verdict is cached.
        self._search = lru_cache(maxsize=AGENT_CACHE_SIZE)(self._search_uncached)

    def is_crawler(self, user_agent: str) -> bool:
        user_agent = user_agent.strip()
        if not user_agent:
            return False
        exclusions = self.exclusions.regex(user_agent)
        agent = exclusions.sub("", user_agent) if exclusions is not None else user_agent
        return bool(agent) and self._search(agent)

    def _search_uncached(self, agent: str) -> bool:
        return self.crawlers.search(agent)
