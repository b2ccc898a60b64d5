"""Restarts and deploys lose no view: real servers, a plain asgi.py/wsgi.py, real signals.

Each test serves Django's own application (``get_asgi_application()`` or
``get_wsgi_application()``, wrapped in nothing) with default settings, keeps a load of
distinct visitors running, and sends SIGTERM or SIGINT to the server's whole process group
(as systemd and Ctrl-C do) while requests are in flight. The accounting is per request,
each visitor's number being in its user agent: every request answered 200 is stored
exactly once; a request that got no response (a server may cut those at exit) is stored
once or not at all; nothing else is stored; the daily counts agree with the rows.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.db.models import Sum

from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.recorder import flush
from tests.conftest import BROWSER_UA
from tests.processes import ROOT, free_port, subprocess_env, wait_for
from tests.redis_server import PrivateRedis

from .restart_load import Load, Outcome, visitor_number
from .restart_servers import SERVERS, serving, stop_group

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

SIGNALS = [signal.SIGTERM, signal.SIGINT]
# Responses received before the signal goes out: the load is well under way.
BEFORE_SIGNAL = 25


def restart_under_load(server: str, sig: signal.Signals, env: dict[str, str], log: Path) -> Outcome:
    """Serve, load, signal the process group mid-load, wait for every process to exit and
    for the load to find the server gone."""
    port = free_port()
    with (
        serving(server, port, env, log) as process,
        Load(f"http://127.0.0.1:{port}") as load,
    ):
        wait_for(lambda: len(load.outcome.ok) >= BEFORE_SIGNAL, "the load to get going")
        stop_group(process, sig, log)
        # The load outlives the server: every view it had is in the outcome (on a loaded
        # machine its thread may not have run between the signal and the server's exit).
        wait_for(lambda: load.outcome.refused > 0, "the load to find the server gone")
    return load.outcome


def assert_stored_once(outcome: Outcome, log: Path) -> int:
    """Check the accounting above; the number of views stored."""
    agents = PageView.objects.values_list("user_agent", flat=True)
    numbers = [visitor_number(ua or "") for ua in agents]
    daily = PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0
    stored = set(numbers)
    found = {
        "lost (200, not stored)": sorted(outcome.ok - stored),
        "stored twice": sorted(n for n, times in Counter(numbers).items() if times > 1),
        "stored, never sent": sorted(stored - outcome.ok - outcome.unknown),
        "daily counts - rows": daily - len(numbers),
    }
    expected: dict[str, object] = {key: 0 if key.startswith("daily") else [] for key in found}
    summary = (
        f"{outcome}; stored {len(numbers)} (of which {len(stored & outcome.unknown)} "
        f"without a response)"
    )
    print(summary)  # the numbers of each run, for the record (pytest -rP shows them)
    server_log = log.read_text(errors="replace")[-3000:]
    assert found == expected, f"{summary}; server log:\n{server_log}"
    return len(numbers)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
@pytest.mark.parametrize("server", list(SERVERS))
def test_a_restart_in_process_mode_stores_every_view(
    server: str, sig: signal.Signals, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    outcome = restart_under_load(server, sig, subprocess_env(""), log)
    assert_stored_once(outcome, log)


@pytest.mark.parametrize(
    ("server", "sig"),
    [
        ("uvicorn", signal.SIGTERM),
        ("uvicorn", signal.SIGINT),
        ("hypercorn", signal.SIGTERM),
        ("gunicorn-wsgi", signal.SIGTERM),
    ],
    ids=lambda v: v.name if isinstance(v, signal.Signals) else v,
)
def test_a_restart_on_the_redis_path_ships_every_view(
    server: str, sig: signal.Signals, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """The per-loop asyncio batcher (the thread batcher under WSGI) ships what it still
    holds to Redis before the process exits; the drain then stores it. A long ship
    interval keeps the views in the batcher until the shutdown."""
    log = tmp_path / "server.log"
    env = subprocess_env(private_redis.url, PAGEVIEW_SHIP_INTERVAL="30")
    outcome = restart_under_load(server, sig, env, log)
    written = flush()
    assert written == assert_stored_once(outcome, log)


def test_a_sigkill_loses_no_view_older_than_the_flush_interval(tmp_path: Path) -> None:
    """Nothing runs on SIGKILL (an OOM kill): what was written before is all that stays.
    With default settings the writer writes views within PAGEVIEW_FLUSH_INTERVAL, not
    after PAGEVIEW_BUFFER_TIMEOUT (300 s), so once that has passed a SIGKILL takes none."""
    log = tmp_path / "server.log"
    port = free_port()
    with serving("uvicorn", port, subprocess_env(""), log) as process:
        with Load(f"http://127.0.0.1:{port}", concurrency=1, limit=12) as load:
            wait_for(lambda: len(load.outcome.ok) == 12, "12 views")
        wait_for(
            lambda: PageView.objects.count() == 12,
            "the writer to write the views without being asked",
            explain=lambda: f"{PageView.objects.count()} stored",
        )
        stop_group(process, signal.SIGKILL, log)
    assert assert_stored_once(load.outcome, log) == 12


def test_a_worker_signalled_alone_writes_its_views_then_dies_by_sigterm() -> None:
    """Where no server handles SIGTERM in the worker (hypercorn's), the app keeps it
    alive for its server's orderly stop; when none comes, it writes, then dies as asked."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.chaos.restart_lone_worker", "6"],
        cwd=ROOT,
        env=subprocess_env(""),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGTERM, result.stderr.decode()
    assert PageView.objects.count() == 6


@pytest.mark.parametrize("server", ["hypercorn-workers-4", "uvicorn-workers-2"])
def test_a_stop_while_workers_still_start_stores_the_view(server: str, tmp_path: Path) -> None:
    """The group stopped right after the first answer, while other workers still start:
    a starting hypercorn worker dies at the SIGTERM, its parent then sends SIGTERM to
    every worker again (hypercorn's shutdown), and the worker holding the view must still
    write it."""
    log = tmp_path / "server.log"
    port = free_port()
    with serving(server, port, subprocess_env(""), log) as process:
        answer = httpx.get(f"http://127.0.0.1:{port}/plain/", headers={"user-agent": BROWSER_UA})
        assert answer.status_code == 200
        stop_group(process, signal.SIGTERM, log)
    stored = PageView.objects.count()
    assert stored == 1, log.read_text(errors="replace")[-3000:]
