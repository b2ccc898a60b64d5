"""The in-memory throttle: one view per key and window, bounded, thread-safe."""

from __future__ import annotations

import threading

import pytest

from django_pageviews.throttle import Throttle


def test_first_allowed_repeat_within_window_refused_after_window_allowed() -> None:
    t = Throttle()
    assert t.allow("k", 20, now=1000.0) is True
    assert t.allow("k", 20, now=1000.0) is False
    assert t.allow("k", 20, now=1019.999) is False
    assert t.allow("k", 20, now=1020.0) is True
    assert t.allow("k", 20, now=1021.0) is False
    assert t.allow("k", 20, now=1040.0) is True


def test_refused_call_does_not_extend_the_window() -> None:
    t = Throttle()
    assert t.allow("k", 10, now=0.0) is True
    assert t.allow("k", 10, now=9.0) is False
    assert t.allow("k", 10, now=10.0) is True


def test_default_clock_is_used_without_now() -> None:
    t = Throttle()
    assert t.allow("k", 3600) is True
    assert t.allow("k", 3600) is False


@pytest.mark.parametrize("seconds", [0, 0.0, -1])
def test_zero_seconds_always_allowed(seconds: float) -> None:
    t = Throttle()
    assert [t.allow("k", seconds, now=5.0) for _ in range(5)] == [True] * 5
    assert len(t._until) == 0


def test_keys_are_independent() -> None:
    t = Throttle()
    assert t.allow(("visitor-a", "/"), 20, now=0.0) is True
    assert t.allow(("visitor-b", "/"), 20, now=0.0) is True
    assert t.allow(("visitor-a", "/other/"), 20, now=0.0) is True
    assert t.allow(("visitor-a", "/"), 20, now=1.0) is False
    assert t.allow(("visitor-b", "/"), 20, now=1.0) is False
    assert t.allow(("visitor-a", "/other/"), 20, now=1.0) is False


def test_bounded_to_max_entries() -> None:
    t = Throttle(max_entries=3)
    for i in range(5):
        assert t.allow(f"k{i}", 100, now=float(i)) is True
        assert len(t._until) <= 3
    assert len(t._until) == 3
    # The oldest went first; the newest are still throttled.
    assert list(t._until) == ["k2", "k3", "k4"]
    for key in ("k2", "k3", "k4"):
        assert t.allow(key, 100, now=5.0) is False


def test_evicts_expired_entries_before_live_ones() -> None:
    t = Throttle(max_entries=3)
    assert t.allow("live-old", 100, now=0.0) is True
    assert t.allow("expiring", 1, now=0.0) is True
    assert t.allow("live-new", 100, now=0.0) is True
    # At 5.0 "expiring" has expired; it goes, although "live-old" is older.
    assert t.allow("new", 100, now=5.0) is True
    assert len(t._until) == 3
    assert set(t._until) == {"live-old", "live-new", "new"}
    assert t.allow("live-old", 100, now=6.0) is False
    assert t.allow("live-new", 100, now=6.0) is False


def test_evicts_all_expired_entries_at_once() -> None:
    t = Throttle(max_entries=3)
    assert t.allow("a", 1, now=0.0) is True
    assert t.allow("b", 1, now=0.0) is True
    assert t.allow("c", 100, now=0.0) is True
    assert t.allow("d", 100, now=5.0) is True
    assert set(t._until) == {"c", "d"}


def test_evicted_key_is_allowed_again_within_its_window() -> None:
    t = Throttle(max_entries=3)
    assert t.allow("a", 100, now=0.0) is True
    assert t.allow("b", 100, now=0.0) is True
    assert t.allow("c", 100, now=0.0) is True
    assert t.allow("d", 100, now=1.0) is True  # evicts "a", the oldest
    assert "a" not in t._until
    assert t.allow("a", 100, now=2.0) is True
    assert len(t._until) <= 3


def test_re_allowed_key_moves_to_the_end() -> None:
    t = Throttle(max_entries=3)
    assert t.allow("a", 10, now=0.0) is True
    assert t.allow("b", 100, now=0.0) is True
    assert t.allow("a", 10, now=10.0) is True  # expired, re-recorded: now the newest
    assert t.allow("c", 100, now=11.0) is True
    assert t.allow("d", 100, now=12.0) is True  # evicts "b", now the oldest
    assert list(t._until) == ["a", "c", "d"]


def test_full_table_does_not_evict_for_a_known_key() -> None:
    t = Throttle(max_entries=2)
    assert t.allow("a", 10, now=0.0) is True
    assert t.allow("b", 100, now=0.0) is True
    assert t.allow("a", 10, now=10.0) is True
    assert set(t._until) == {"a", "b"}


def test_clear_forgets_everything() -> None:
    t = Throttle()
    assert t.allow("k", 100, now=0.0) is True
    t.clear()
    assert len(t._until) == 0
    assert t.allow("k", 100, now=1.0) is True


def test_concurrent_calls_on_one_key_allow_exactly_once() -> None:
    t = Throttle()
    threads_count = 8
    calls = 1000
    barrier = threading.Barrier(threads_count)
    results: list[list[bool]] = [[] for _ in range(threads_count)]

    def worker(index: int) -> None:
        barrier.wait()
        out = results[index]
        for _ in range(calls):
            out.append(t.allow(("visitor", "/page/"), 3600))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    flat = [r for per_thread in results for r in per_thread]
    assert len(flat) == threads_count * calls
    assert flat.count(True) == 1


def test_concurrent_distinct_keys_stay_bounded() -> None:
    t = Throttle(max_entries=50)
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    allowed = [0] * threads_count

    def worker(index: int) -> None:
        barrier.wait()
        for i in range(500):
            if t.allow((index, i), 3600):
                allowed[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    assert allowed == [500] * threads_count
    assert len(t._until) == 50


def test_expired_entries_of_every_window_go_before_the_oldest_live_one() -> None:
    # Windows of different lengths interleave: an expired entry can sit behind live ones
    # in age order; it still goes first, and every expired entry goes at once.
    t = Throttle(max_entries=5)
    assert t.allow("long-old", 100, now=0.0) is True
    assert t.allow("short-1", 2, now=1.0) is True
    assert t.allow("mid", 10, now=1.5) is True
    assert t.allow("short-2", 2, now=2.0) is True
    assert t.allow("long-new", 100, now=3.0) is True
    assert t.allow("new", 100, now=5.0) is True  # short-1 and short-2 have expired
    assert list(t._until) == ["long-old", "mid", "long-new", "new"]
    assert t.allow("newer", 100, now=6.0) is True  # not full yet: nothing goes
    assert list(t._until) == ["long-old", "mid", "long-new", "new", "newer"]
    assert t.allow("newest", 100, now=12.0) is True  # "mid" expired at 11.5
    assert list(t._until) == ["long-old", "long-new", "new", "newer", "newest"]
    assert t.allow("last", 100, now=13.0) is True  # none expired: the oldest goes
    assert list(t._until) == ["long-new", "new", "newer", "newest", "last"]
    for key in ("long-new", "new", "newer", "newest", "last"):
        assert t.allow(key, 100, now=14.0) is False
    assert t.allow("long-old", 100, now=14.0) is True  # evicted: allowed again


def test_a_flood_of_new_visitors_keeps_the_newest() -> None:
    t = Throttle(max_entries=100)
    for i in range(10_000):
        assert t.allow(i, 50, now=float(i) / 100) is True
        assert len(t._until) <= 100
    assert list(t._until) == list(range(9_900, 10_000))
    assert sum(len(w) for w in t._windows.values()) == 100
    assert all(t.allow(i, 50, now=100.0) is False for i in range(9_900, 10_000))


def test_a_new_key_removes_the_expired_entries_of_its_window() -> None:
    # Not full: the expired entries still go, so that the table holds one window of keys,
    # not everything seen until max_entries.
    t = Throttle(max_entries=100)
    assert t.allow("a", 10, now=0.0) is True
    assert t.allow("b", 10, now=5.0) is True
    assert t.allow("other-window", 1, now=5.0) is True
    assert t.allow("c", 10, now=12.0) is True  # "a" expired at 10.0; "b" lives until 15.0
    assert list(t._until) == ["b", "other-window", "c"]
    assert t.allow("d", 10, now=15.0) is True  # "b" expired at 15.0
    assert list(t._until) == ["other-window", "c", "d"]
    assert t.allow("c", 10, now=16.0) is False
    assert t.allow("b", 10, now=16.0) is True


def test_a_steady_stream_of_new_visitors_keeps_one_window_of_them() -> None:
    # 1,000 new keys per second with a window of 5 s: the table holds 5,000 keys after any
    # number of them, far below its bound (it kept 100,000 before: a memory that only grew
    # until the table was full, ~0.5 kB per key).
    t = Throttle(max_entries=100_000)
    for i in range(60_000):
        assert t.allow(i, 5, now=i / 1000) is True
    assert len(t._until) == 5_000
    assert sum(len(w) for w in t._windows.values()) == 5_000
    assert list(t._until) == list(range(55_000, 60_000))
    assert t.allow(55_000, 5, now=59.999) is False
    assert t.allow(54_999, 5, now=59.999) is True
