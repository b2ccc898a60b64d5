"""A restart while the database is away (found attacking the merge of issue #10).

A deploy often meets a database that refuses writes for a moment: a failover, a
maintenance window. The shutdown's one write then failed, the server exited at once, and
every buffered view was lost with nothing but a "will retry" line in the log. Now the
write is retried at exit for up to ``shutdown.SHUTDOWN_RETRY_SECONDS``: an outage that ends
within it loses nothing; one that outlasts it ends in an error naming the number of views
lost, and the server still stops.

Real uvicorn serving a plain asgi.py, in-process mode, SIGTERM to the process group; the
database refuses writes for real (a trigger raising a failover's error on PostgreSQL and
MariaDB, an exclusive lock held on SQLite).
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.db import connection
from django.db.models import Sum

from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.shutdown import SHUTDOWN_RETRY_SECONDS
from tests.conftest import BROWSER_UA
from tests.db_faults import allow_all
from tests.processes import free_port, subprocess_env, wait_for

from .restart_servers import group_alive, serving, stop_group

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

VIEWS = 12
TRIGGER = "pageviews_test_outage"
SHUTTING_DOWN = "Waiting for application shutdown."
WRITE_FAILED = "page views failed; will retry."


class Outage:
    """The database refuses every page-view write, not for their data, until ``end()``."""

    def __init__(self) -> None:
        self._lock: sqlite3.Connection | None = None
        table = connection.ops.quote_name(PageViewDaily._meta.db_table)
        vendor = connection.vendor
        if vendor == "sqlite":
            self._lock = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
            self._lock.execute("BEGIN EXCLUSIVE")
            return
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute(
                    f"CREATE FUNCTION {TRIGGER}() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'read-only after a failover' USING ERRCODE = '25006'; "
                    "END $$ LANGUAGE plpgsql"
                )
                cursor.execute(
                    f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
                )
            else:  # 1290: running with --read-only
                cursor.execute(
                    f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} FOR EACH ROW "
                    "SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'read-only', MYSQL_ERRNO = 1290"
                )

    def end(self) -> None:
        if self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None
            return
        allow_all(PageViewDaily, TRIGGER)


@contextmanager
def outage() -> Iterator[Outage]:
    fault = Outage()
    try:
        yield fault
    finally:
        fault.end()


def send_views(port: int) -> None:
    for n in range(VIEWS):
        headers = {"user-agent": f"{BROWSER_UA} visitor/{n}"}
        response = httpx.get(f"http://127.0.0.1:{port}/plain/", headers=headers, timeout=30)
        assert response.status_code == 200


def stored() -> tuple[int, int]:
    daily = PageViewDaily.objects.aggregate(n=Sum("views"))["n"] or 0
    return PageView.objects.count(), daily


def env() -> dict[str, str]:
    return {
        **subprocess_env(""),
        "DJANGO_SETTINGS_MODULE": "tests.chaos.restart_faults_settings",
    }


def test_an_outage_that_ends_during_the_shutdown_loses_nothing(tmp_path: Path) -> None:
    log, port = tmp_path / "server.log", free_port()
    with outage() as fault, serving("uvicorn", port, env(), log) as process:
        send_views(port)
        os.killpg(process.pid, signal.SIGTERM)

        def failed_at_shutdown() -> bool:
            text = log.read_text(errors="replace")
            return WRITE_FAILED in text.partition(SHUTTING_DOWN)[2]

        wait_for(failed_at_shutdown, "the shutdown's write to fail")
        fault.end()
        process.wait(timeout=60)
        wait_for(lambda: not group_alive(process.pid), "the server's processes to exit")
    assert stored() == (VIEWS, VIEWS), log.read_text(errors="replace")[-3000:]


def test_an_outage_outlasting_the_shutdown_is_counted_and_the_server_stops(
    tmp_path: Path,
) -> None:
    log, port = tmp_path / "server.log", free_port()
    with outage(), serving("uvicorn", port, env(), log) as process:
        send_views(port)
        stop_group(process, signal.SIGTERM, log)
        text = log.read_text(errors="replace")
    assert stored() == (0, 0)
    lost = f"{VIEWS} page views could not be written before exit and are lost"
    assert lost in text, text[-3000:]
    assert f"for {SHUTDOWN_RETRY_SECONDS} s" in text
