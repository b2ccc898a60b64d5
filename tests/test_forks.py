"""forks: the resets registered run in a forked child, once, and ``check`` runs them in a
child that Python's fork hooks did not reach (a fork made in C, as uWSGI does)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from django_pageviews import forks, salts
from django_pageviews.redis import client as redis_client


def in_a_child(look: Callable[[], str]) -> str:
    """Fork; what ``look`` returns in the child, which then leaves without cleanup."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, look().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = pipe.read()
    os.waitpid(pid, 0)
    return seen


def test_a_forked_child_runs_each_reset_once_and_the_parent_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[str] = []
    monkeypatch.setattr(forks, "_resets", [*forks._resets])
    forks.after_fork(lambda: runs.append("first"))
    forks.after_fork(lambda: runs.append("second"))

    def look() -> str:
        forks.check()  # the hooks ran: nothing is left for check to do
        return " ".join(runs)

    assert in_a_child(look) == "first second"
    forks.check()
    assert runs == []


def test_check_runs_the_resets_a_fork_in_c_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    monkeypatch.setattr(forks, "_resets", [])
    forks.after_fork(lambda: runs.append(os.getpid()))
    monkeypatch.setattr(forks, "_pid", os.getpid() + 1)  # as in a child of C's fork()
    forks.check()
    forks.check()
    assert runs == [os.getpid()]


def test_a_failing_reset_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []

    def broken() -> None:
        raise RuntimeError("broken reset")

    monkeypatch.setattr(forks, "_resets", [broken, lambda: runs.append("after")])
    monkeypatch.setattr(forks, "_pid", os.getpid() + 1)
    forks.check()
    assert runs == ["after"]


def test_a_child_has_no_redis_client_and_salts_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent_client = object()
    monkeypatch.setattr(redis_client, "_client", parent_client)
    parent_salts = salts._state

    def look() -> str:
        client = "parent's" if redis_client._client is parent_client else "none"
        state = "parent's" if salts._state is parent_salts else "new"
        return f"client {client}, salts {state}"

    assert in_a_child(look) == "client none, salts new"
    assert redis_client._client is parent_client and salts._state is parent_salts
