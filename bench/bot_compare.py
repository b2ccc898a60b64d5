"""Crawler detectors compared on a sample of real user agents (`bench/user_agents.py`):
accuracy (browsers must count as people, crawlers as bots) and the cost of a user agent
seen for the first time (every cache empty).

    pip install -e ".[bench]"
    .venv/bin/python bench/bot_compare.py

Candidates: crawlerdetect (the package's dependency), ua-parser (`device.family ==
"Spider"`, with its pure-Python resolver and with the ua-parser-rs resolver), user-agents
(`is_bot`, ua-parser's legacy API underneath), and the package's own `bots.is_bot`
(crawlerdetect plus the default PAGEVIEW_BOT_PATTERNS). The misclassified user agents are
listed on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
# Run as a script, bench/ is sys.path[0], where bench/user_agents.py would hide the
# user-agents package's `user_agents` module: import from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from bench.common import markdown_table, median, wait_for_quiet_machine  # noqa: E402
from bench.user_agents import BROWSERS, CRAWLERS  # noqa: E402

RUNS = 5  # the median of RUNS is reported
PASSES = 3  # passes over the sample per run, each with every cache emptied first
QUIET_WAIT = 20  # seconds at most to wait for the machine's cores to be idle

Detector = Callable[[str], bool]


@dataclass(frozen=True)
class Candidate:
    name: str
    # A detector whose caches are empty; the work done once per process (loading and
    # compiling the database) is done before, and not timed.
    fresh: Callable[[], Detector]


@dataclass(frozen=True)
class Result:
    name: str
    false_positives: list[str]  # browsers called bots
    false_negatives: list[str]  # crawlers missed
    browser_us: float
    crawler_us: float
    all_us: float


def crawlerdetect_candidate() -> Candidate:
    from crawlerdetect import CrawlerDetect

    CrawlerDetect().isCrawler("warm-up")  # compiles the database (module-level, once)

    def fresh() -> Detector:
        detector = CrawlerDetect()  # a new instance: an empty result cache

        def detect(ua: str) -> bool:
            return bool(detector.isCrawler(ua))

        return detect

    return Candidate(f"crawlerdetect {version('crawlerdetect')}", fresh)


def ua_parser_candidates() -> list[Candidate]:
    """ua-parser's resolvers have no cache of their own (the global `ua_parser.parse`
    wraps one in a CachingResolver, which is left out here). Only the device domain is
    resolved: a crawler's device family is "Spider"."""
    from ua_parser import BasicResolver, Domain, Resolver, load_builtins, load_lazy_builtins

    def candidate(name: str, resolver: Resolver) -> Candidate:
        resolver("warm-up", Domain.DEVICE)

        def detect(ua: str) -> bool:
            device = resolver(ua, Domain.DEVICE).device
            return device is not None and device.family == "Spider"

        return Candidate(name, lambda: detect)

    name = f"ua-parser {version('ua-parser')}"
    candidates = [candidate(f"{name} (pure-Python `re` resolver)", BasicResolver(load_builtins()))]
    try:
        from ua_parser.regex import Resolver as RegexResolver
    except ImportError:
        print("ua-parser-rs is not installed: its resolver is left out", file=sys.stderr)
    else:
        candidates.append(
            candidate(
                f"{name} + ua-parser-rs {version('ua-parser-rs')} (Rust `regex` resolver)",
                RegexResolver(load_lazy_builtins()),
            )
        )
    return candidates


def user_agents_candidate() -> Candidate:
    import user_agents  # type: ignore[import-untyped]
    from ua_parser import user_agent_parser

    user_agents.parse("warm-up")

    def detect(ua: str) -> bool:
        return bool(user_agents.parse(ua).is_bot)

    def fresh() -> Detector:
        user_agent_parser._PARSE_CACHE.clear()  # the legacy API's cache of parses
        return detect

    return Candidate(f"user-agents {version('user-agents')} (`is_bot`)", fresh)


def is_bot_candidate() -> Candidate:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django_pageviews.bots import _detector, is_bot

    is_bot("warm-up")  # compiles crawlerdetect's database and PAGEVIEW_BOT_PATTERNS

    def fresh() -> Detector:
        is_bot.cache_clear()
        _detector.cache_clear()  # a new matcher: its regex and verdict caches empty
        _detector()
        return is_bot

    return Candidate("django_pageviews `bots.is_bot` (crawlerdetect + default patterns)", fresh)


def candidates() -> list[Candidate]:
    found = [crawlerdetect_candidate()]
    for make in (ua_parser_candidates, lambda: [user_agents_candidate()]):
        try:
            found += make()
        except ImportError as exc:
            print(f"left out ({exc}); pip install -e '.[bench]'", file=sys.stderr)
    found.append(is_bot_candidate())
    return found


def seconds(candidate: Candidate, sample: Sequence[str]) -> float:
    """PASSES passes over ``sample``, each with empty caches: every call is a first
    sight. Returns the seconds spent in calls."""
    total = 0.0
    for _ in range(PASSES):
        detect = candidate.fresh()
        started = time.perf_counter()
        for ua in sample:
            detect(ua)
        total += time.perf_counter() - started
    return total


def measure(all_candidates: Sequence[Candidate]) -> list[Result]:
    samples = {"browsers": BROWSERS, "crawlers": CRAWLERS}
    timings: dict[tuple[str, str], list[float]] = {}
    for run in range(RUNS):  # candidates interleaved, so that drift affects all alike
        print(f"run {run + 1}/{RUNS}", file=sys.stderr, flush=True)
        for candidate in all_candidates:
            for group, sample in samples.items():
                timings.setdefault((candidate.name, group), []).append(seconds(candidate, sample))
    results = []
    n_calls = {group: PASSES * len(sample) for group, sample in samples.items()}
    for candidate in all_candidates:
        detect = candidate.fresh()
        runs = {group: timings[candidate.name, group] for group in samples}
        both = [b + c for b, c in zip(runs["browsers"], runs["crawlers"], strict=True)]
        results.append(
            Result(
                name=candidate.name,
                false_positives=[ua for ua in BROWSERS if detect(ua)],
                false_negatives=[ua for ua in CRAWLERS if not detect(ua)],
                browser_us=median(runs["browsers"]) / n_calls["browsers"] * 1e6,
                crawler_us=median(runs["crawlers"]) / n_calls["crawlers"] * 1e6,
                all_us=median(both) / sum(n_calls.values()) * 1e6,
            )
        )
    return results


def main() -> None:
    all_candidates = candidates()
    busy = wait_for_quiet_machine(limit=QUIET_WAIT)
    print(f"other processes kept {busy:.1f} cores busy at the start", file=sys.stderr)
    results = measure(all_candidates)
    for result in results:
        print(f"\n{result.name}:", file=sys.stderr)
        for ua in result.false_positives:
            print(f"  browser called a bot: {ua}", file=sys.stderr)
        for ua in result.false_negatives:
            print(f"  crawler missed:       {ua}", file=sys.stderr)
    n = len(BROWSERS) + len(CRAWLERS)
    print(
        markdown_table(
            [
                "detector",
                "accuracy",
                f"false positives (of {len(BROWSERS)} browsers)",
                f"false negatives (of {len(CRAWLERS)} crawlers)",
                "µs/call, browsers",
                "µs/call, crawlers",
                "µs/call, whole sample",
            ],
            [
                (
                    r.name,
                    f"{(n - len(r.false_positives) - len(r.false_negatives)) / n:.1%}",
                    len(r.false_positives),
                    len(r.false_negatives),
                    f"{r.browser_us:.1f}",
                    f"{r.crawler_us:.1f}",
                    f"{r.all_us:.1f}",
                )
                for r in results
            ],
        )
    )
    print(
        f"\n{n} user agents; first sight (every cache emptied before each pass), "
        f"median of {RUNS} runs of {PASSES} passes; {busy:.1f} cores busy at the start."
    )


if __name__ == "__main__":
    main()
