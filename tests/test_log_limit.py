"""LogLimit: a warning per key at most once per interval, once ever with FOREVER, and one
True for threads asking at the same moment."""

from __future__ import annotations

import threading

from django_pageviews.log_limit import FOREVER, MINUTE, LogLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_due_once_per_minute_per_key() -> None:
    clock = Clock()
    limit = LogLimit(clock=clock)
    assert [limit.due(), limit.due(), limit.due("other")] == [True, False, True]
    clock.now += MINUTE - 0.001
    assert limit.due() is False
    clock.now += 0.001
    assert [limit.due(), limit.due(), limit.due("other")] == [True, False, True]


def test_reset_makes_the_next_one_due() -> None:
    limit = LogLimit(clock=Clock())
    assert limit.due() is True
    limit.reset()
    assert [limit.due(), limit.due()] == [True, False]


def test_forever_is_once_per_key() -> None:
    clock = Clock()
    limit = LogLimit(FOREVER, clock=clock)
    assert [limit.due(("a", "b")), limit.due(("a", "c"))] == [True, True]
    clock.now += 10 * 365 * 86400.0
    assert [limit.due(("a", "b")), limit.due(("a", "c"))] == [False, False]


def test_threads_asking_at_once_get_one_true() -> None:
    limit = LogLimit(clock=Clock())
    start = threading.Barrier(8)
    answers: list[bool] = []

    def ask() -> None:
        start.wait()
        answers.extend(limit.due() for _ in range(1000))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8000
    assert answers.count(True) == 1
