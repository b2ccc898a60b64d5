"""A bounded load of distinct visitors that keeps sending while a server is stopped.

Every request is a new visitor (its own user agent) on a new connection, so that the
throttle never merges two of them and a refused connection is known never to have reached
the server. The load stops by itself after ``limit`` requests or ``seconds``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.conftest import BROWSER_UA

PATH = "/plain/"
USER_AGENT = BROWSER_UA + " restart/{}"


def visitor_number(user_agent: str) -> int:
    """The request a stored view came from (its user agent carries the number)."""
    return int(user_agent.rsplit("/", 1)[1])


@dataclass
class Outcome:
    """Each request's visitor number, by what the client saw."""

    ok: set[int] = field(default_factory=set)  # 200: each one a view the server must store
    unknown: set[int] = field(default_factory=set)  # sent, no response: the server may
    # have counted it or not (a connection it accepted, then cut or closed unread)
    other: int = 0  # another status (also in ``unknown``): a request the server cut
    refused: int = 0  # the connection was refused: it never reached the server

    def __str__(self) -> str:
        return (
            f"{len(self.ok)} ok (200), {len(self.unknown)} without a response, "
            f"{self.other} other status, {self.refused} refused"
        )


class Load:
    """Run ``concurrency`` clients in a thread of its own until ``stop()``."""

    def __init__(
        self, base: str, concurrency: int = 6, limit: int = 4000, seconds: float = 60
    ) -> None:
        self.base = base
        self.concurrency = concurrency
        self.limit = limit
        self.seconds = seconds
        self.outcome = Outcome()
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Outcome:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the load generator did not stop"
        return self.outcome

    async def _main(self) -> None:
        timeout = httpx.Timeout(30.0)
        async with httpx.AsyncClient(base_url=self.base, timeout=timeout) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.concurrency)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            number = next(self._numbers)
            if number >= self.limit:
                return
            headers = {"user-agent": USER_AGENT.format(number), "connection": "close"}
            try:
                response = await client.get(PATH, headers=headers)
            except httpx.ConnectError:
                self.outcome.refused += 1
                await asyncio.sleep(0.02)  # the server is gone or not listening: no spin
                continue
            except httpx.TransportError:
                self.outcome.unknown.add(number)
                continue
            if response.status_code == 200:
                self.outcome.ok.add(number)
            else:
                # The page always answers 200: another status is the server cutting the
                # request as it stops (gunicorn's SIGINT exits from inside a request,
                # after the middleware counted it). Like no response: stored once or not.
                self.outcome.other += 1
                self.outcome.unknown.add(number)
