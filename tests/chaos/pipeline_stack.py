"""The real processes of one chaos test (uvicorn, Celery workers and beats), and the
ledger that its accounting reads from the database and Redis.

Every process is started with the tests' settings pointed at the test's own Redis and
database, a beat schedule of one second, and PAGEVIEW_BUFFER_TIMEOUT of two seconds: views
spilled to a web process's in-process buffer are written within seconds, and cleanup
replays the claim of a dead worker two seconds after it was made.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from django.db.models import Sum

from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch, SkippedDaily
from django_pageviews.redis.buffer import all_shards, raw_event_count
from django_pageviews.stats import DROPPED, SKIP_INVALID
from django_pageviews.wire import TOTAL, parse_skipped_field
from tests.processes import (
    BIN,
    ROOT,
    celery,
    free_port,
    subprocess_env,
    wait_for,
    wait_until_serving,
)

WRAPPED_APP = "tests.asgi:application"  # with PageViewsLifespan
PLAIN_APP = "tests.chaos.pipeline_asgi:application"  # get_asgi_application() only
CELERY_APP = "tests.chaos.pipeline_celery"
PROCESS_TASK = "django_pageviews.tasks.process_pageview_buffer"
CLEANUP_TASK = "django_pageviews.tasks.cleanup_old_buffer_data"
READY_PATH = "/status/201/"  # answered by Django, never a view (status 201)
BASE_SETTINGS = {"PAGEVIEW_TEST_BEAT_SECONDS": "1", "PAGEVIEW_BUFFER_TIMEOUT": "2"}
STOP_SECONDS = 30.0


class Proc:
    """One real process with its log (appended to across restarts)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def wait(self, seconds: float = STOP_SECONDS) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout=seconds)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.alive():
            self.send(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there STOP_SECONDS later."""
        if self.alive():
            self.send(signal.SIGTERM)
            try:
                self.wait()
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} ({self.log}) ---\n{self.text()[-chars:]}"


class Web(Proc):
    def __init__(self, name: str, app: str, lifespan: str, env: dict[str, str], log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [str(BIN / "uvicorn"), app, "--loop", "uvloop", "--lifespan", lifespan]
        args += ["--port", str(self.port), "--no-access-log"]
        super().__init__(name, args, env, log)

    def start(self) -> Web:
        super().start()
        assert self.popen is not None
        wait_until_serving(self.base + READY_PATH, self.popen)
        return self


def _task_line(task: str) -> re.Pattern[str]:
    return re.compile(rf"Task {re.escape(task)}\[[^\]]+\] (succeeded|raised|failed)")


class Stack:
    """The processes of one test; all stopped (SIGTERM) when the block ends."""

    def __init__(
        self,
        tmp_path: Path,
        redis_url: str,
        broker_url: str = "",
        settings: dict[str, str] | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.redis_url = redis_url
        self.broker_url = broker_url
        self.settings = settings or {}  # PAGEVIEW_<NAME>: JSON, for every process
        self.procs: list[Proc] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def env(self, **settings: str) -> dict[str, str]:
        env = subprocess_env(self.redis_url, **{**BASE_SETTINGS, **self.settings, **settings})
        if self.broker_url:
            env["CHAOS_BROKER_URL"] = self.broker_url
        return env

    def _log(self, name: str) -> Path:
        return self.tmp_path / f"{name}.log"

    def web(self, name: str, app: str = WRAPPED_APP, **settings: str) -> Web:
        lifespan = "on" if app == WRAPPED_APP else "auto"  # a plain Django app has none
        web = Web(name, app, lifespan, self.env(**settings), self._log(name))
        self.procs.append(web)
        return web.start()

    def worker(self, name: str, **settings: str) -> Proc:
        args = celery("-A", CELERY_APP, "worker", "-l", "info", "--pool", "solo")
        args += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        args += ["-n", f"{name}@chaos"]
        proc = Proc(name, args, self.env(**settings), self._log(name))
        self.procs.append(proc)
        proc.start()
        wait_for(lambda: " ready." in proc.text(), f"worker {name} ready", explain=proc.tail)
        return proc

    def beat(self, name: str) -> Proc:
        schedule = self.tmp_path / f"{name}-schedule"
        pidfile = self.tmp_path / f"{name}.pid"
        args = celery("-A", CELERY_APP, "beat", "-l", "info", "-s", str(schedule))
        args += ["--pidfile", str(pidfile)]
        proc = Proc(name, args, self.env(), self._log(name))
        self.procs.append(proc)
        proc.start()
        return proc

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if " worker " in f" {' '.join(p.args)} "]

    def tasks_done(self, task: str = PROCESS_TASK) -> int:
        """Tasks of this name finished (succeeded or raised) by every worker so far."""
        pattern = _task_line(task)
        return sum(len(pattern.findall(p.text())) for p in self.workers())

    def wait_tasks(self, n: int, task: str = PROCESS_TASK) -> None:
        """Wait until ``n`` more ``task`` runs have finished."""
        target = self.tasks_done(task) + n
        wait_for(
            lambda: self.tasks_done(task) >= target,
            f"{n} more {task} runs",
            seconds=120,
            explain=self.tails,
        )

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.procs)


@dataclass
class Ledger:
    """Where the views are: the database, and what Redis still holds."""

    stored: int  # PageViewDaily total
    raw_rows: int  # PageView rows
    skipped: dict[str, int]  # SkippedDaily by reason
    redis: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        """Views counted as lost (a full buffer, the "drop" fallback) or unreadable."""
        return self.skipped.get(DROPPED, 0) + self.skipped.get(SKIP_INVALID, 0)

    @property
    def redis_idle(self) -> bool:
        r = self.redis
        return not (r.get("pending_views") or r.get("raw_events") or r.get("claims"))

    def state(self) -> tuple[object, ...]:
        return (self.stored, self.raw_rows, tuple(sorted(self.skipped.items())), repr(self.redis))


def redis_state(client: Any) -> dict[str, int]:
    """What the buffer holds, summed over its shards (one with the default setting)."""
    state: Counter[str] = Counter()
    for keys in all_shards(client):
        state["pending_views"] += int(client.hget(keys.dims, TOTAL) or 0)
        state["pending_fields"] += int(client.hlen(keys.pending))
        state["raw_events"] += raw_event_count(client, keys.events)
        state["claims"] += int(client.zcard(keys.claims))
        state["aside_batches"] += int(client.zcard(keys.aside))
        state["aside_keys"] += sum(
            1 for _ in client.scan_iter(match=f"{keys.prefix}aside*", count=1000)
        )
    return dict(state)


def read_ledger(client: Any) -> Ledger:
    skipped = dict(
        SkippedDaily.objects.values_list("reason").annotate(n=Sum("requests")).order_by()
    )
    return Ledger(
        stored=PageViewDaily.objects.aggregate(total=Sum("views"))["total"] or 0,
        raw_rows=PageView.objects.count(),
        skipped={str(k): int(v) for k, v in skipped.items()},
        redis=redis_state(client),
    )


def processed_batches() -> int:
    return ProcessedBatch.objects.count()


def settle(expected: int, client: Any, quiet: float = 20.0, limit: float = 150.0) -> Ledger:
    """Wait until the database accounts for ``expected`` views (stored + dropped) and
    Redis holds none; or, when that does not come, until nothing has changed for
    ``quiet`` seconds (views lost or stuck: the caller's assertions say which)."""
    started = last_change = time.monotonic()
    ledger = read_ledger(client)
    state = ledger.state()
    while time.monotonic() - started < limit:
        if ledger.stored + ledger.dropped == expected and ledger.redis_idle:
            break
        if time.monotonic() - last_change > quiet:
            break
        time.sleep(0.2)
        ledger = read_ledger(client)
        if ledger.state() != state:
            state, last_change = ledger.state(), time.monotonic()
    return ledger


def pending_in(client: Any, key: str) -> int:
    """Views (not skip counts) in one Redis hash of count fields."""
    counts: dict[str, str] = client.hgetall(key)
    return sum(int(n) for f, n in counts.items() if parse_skipped_field(f) is None)
