"""A bounded load: a fixed number of GET requests from distinct visitors, about 20 at a
time, paced, spread over one or more servers; it stops by itself.

Every request gets its own connection (no keep-alive): a server that stops or restarts
then refuses connections rather than dropping a request it may have served, so that a
request either got its answer (counted here when it is a 200) or was never served (sent
again, to the next server, until the load's deadline).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.conftest import BROWSER_UA
from tests.processes import wait_for

RETRY_PAUSE = 0.05


@dataclass
class LoadResult:
    ok: int = 0  # 200 responses: views sent
    ok_by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0  # connections refused (server down): sent again
    unanswered: int = 0  # a server closed the connection before answering: sent again
    gave_up: int = 0  # still unanswered at the deadline


class Load:
    """``total`` requests; request ``i`` asks ``path(i)`` as visitor ``i`` of ``tag``."""

    def __init__(
        self,
        bases: list[str],
        total: int,
        tag: str,
        path: Callable[[int], tuple[str, str]],
        concurrency: int = 20,
        rate: float = 150.0,
        deadline: float = 180.0,
    ) -> None:
        self.bases = bases
        self.total = total
        self.tag = tag
        self.path = path  # i -> (path, kind): kind names the page type in the result
        self.concurrency = concurrency
        self.rate = rate
        self.deadline = deadline
        self.result = LoadResult()
        self._answered = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="chaos-load", daemon=True)
        self._error: BaseException | None = None

    @property
    def answered(self) -> int:
        with self._lock:
            return self._answered

    def start(self) -> Load:
        self._thread.start()
        return self

    def wait_answered(self, n: int, what: str = "") -> None:
        wait_for(
            lambda: self.answered >= n or not self._thread.is_alive(),
            f"{n} answered requests {what}",
            seconds=self.deadline,
        )
        if self._error is not None:
            raise self._error
        assert self.answered >= n, f"the load ended after {self.answered} answers"

    def join(self) -> LoadResult:
        self._thread.join(self.deadline + 30)
        assert not self._thread.is_alive(), "the load did not stop"
        if self._error is not None:
            raise self._error
        return self.result

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by join()
            self._error = exc

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0)
        started = time.monotonic()
        indexes = iter(range(self.total))
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def worker() -> None:
                for i in indexes:
                    delay = started + i / self.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await self._one(client, i, started)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _one(self, client: httpx.AsyncClient, i: int, started: float) -> None:
        path, kind = self.path(i)
        headers = {"user-agent": f"{BROWSER_UA} chaos/{self.tag}/{i}"}
        attempt = 0
        while time.monotonic() - started < self.deadline:
            base = self.bases[(i + attempt) % len(self.bases)]
            attempt += 1
            try:
                response = await client.get(base + path, headers=headers)
            except httpx.ConnectError:
                self.result.refused += 1
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # Disconnected or reset without a response: a stopping server closed a
                # connection whose request it had not started (uvicorn finishes the ones
                # it started before it exits).
                self.result.unanswered += 1
            else:
                with self._lock:
                    self._answered += 1
                self.result.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.result.ok += 1
                    self.result.ok_by_kind[kind] += 1
                return
            await asyncio.sleep(RETRY_PAUSE)
        self.result.gave_up += 1
