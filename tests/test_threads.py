"""The package's threads block the signals a server acts on, so that the kernel hands a
signal sent to the process to a thread that handles it (threads.py): daphne once slept
through SIGINT with the writer thread alive."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from django_pageviews.buffer import buffer
from django_pageviews.redis.sync_batcher import batcher
from django_pageviews.threads import SERVER_SIGNALS
from tests.conftest import distinct_visitors, wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)


def blocked(thread: threading.Thread | None) -> set[int]:
    """The signals the thread blocks, as the kernel reports them."""
    assert thread is not None and thread.is_alive()
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    mask = int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def test_the_writer_thread_takes_no_server_signal() -> None:
    wsgi_get("/plain/", **distinct_visitors(1)[0])
    assert blocked(buffer._thread) >= set(SERVER_SIGNALS)
    assert blocked(threading.main_thread()) & {signal.SIGINT, signal.SIGTERM} == set()


def test_the_shipper_thread_takes_no_server_signal(redis_url: str) -> None:
    wsgi_get("/plain/", **distinct_visitors(1)[0])
    assert blocked(batcher._thread) >= set(SERVER_SIGNALS)
