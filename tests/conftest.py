from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.test import override_settings
from pytest_django.fixtures import validate_django_db

from django_pageviews import salts
from django_pageviews.buffer import buffer
from django_pageviews.throttle import throttle
from tests.redis_cluster import PrivateCluster
from tests.redis_server import PrivateRedis, named_database

# A test run started in the background by a shell without job control (``cmd &`` in a
# script, ``(nohup cmd &)``) inherits SIGINT ignored, and so would every server the tests
# start: Twisted then installs no SIGINT handler and daphne sleeps through Ctrl-C
# (tests/chaos/test_restarts.py waited 60 s for it). The servers of the users' sites are
# not started that way: give the tests' servers SIGINT's default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

BASE_URL = "http://testserver"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CRAWLER_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: two workers per CPU. About 40% of a pass is spent waiting on servers,
    workers and timers that the chaos and process tests start (measured: 482 s of CPU in
    a 413 s pass on 2 CPUs); the heavy tests ran in 262 s with 4 workers against 338 s
    with 2. PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return 2 * (os.cpu_count() or 1)


@pytest.fixture(scope="session")
def redis_base_url(worker_id: str) -> Iterator[str]:
    """A Redis database this xdist worker may empty: a private server started for the
    session, or, when TEST_REDIS_URL names a server, one of its databases 1-15."""
    run = os.getpid() if worker_id == "master" else os.getppid()
    named = named_database(os.environ, worker_id, run)
    if named is not None:
        yield named
        return
    server = PrivateRedis()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_base_url: str) -> Iterator[str]:
    """An empty Redis database, with PAGEVIEW_ASYNC_PROCESSING on and pointed at it."""
    import redis

    client = redis.Redis.from_url(redis_base_url)
    client.flushdb()
    client.close()
    with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=redis_base_url):
        yield redis_base_url
        _stop_shipping()  # before the settings go back: nothing ships to another Redis


@pytest.fixture(scope="session")
def redis_cluster_base() -> Iterator[PrivateCluster]:
    """A Redis Cluster of this xdist worker's own (three masters, three replicas), started
    at the first test that asks for it and stopped at the end of the session."""
    cluster = PrivateCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster(redis_cluster_base: PrivateCluster) -> Iterator[PrivateCluster]:
    """The worker's Redis Cluster, emptied, with the Redis path switched on and pointed at
    it (PAGEVIEW_REDIS_CLUSTER). A test that kills a node starts a cluster of its own."""
    cluster = redis_cluster_base
    cluster.flush()
    with override_settings(
        PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=cluster.url, PAGEVIEW_REDIS_CLUSTER=True
    ):
        yield cluster
        _stop_shipping()


def _stop_shipping() -> None:
    from django_pageviews.redis.sync_batcher import batcher

    batcher.discard()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis server of this test's own, which the test may stop and restart."""
    server = PrivateRedis()
    server.start()
    try:
        with override_settings(PAGEVIEW_ASYNC_PROCESSING=True, PAGEVIEW_REDIS_URL=server.url):
            yield server
            _stop_shipping()
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _fresh_pipeline(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty buffers, throttle table and salts in memory, and no
    most-viewed list's depths remembered (ranking.py: another test's data would set them).

    A test inside a rolled-back transaction (pytest-django's ``db``) holds the in-process
    writer's age flush: the writer thread has a connection of its own, so what it commits
    (views, or a skip count's batch: an admin page is one) would outlive the test, and the
    next tests would find an extra ProcessedBatch (seen on a loaded machine, where a test
    outlasts PAGEVIEW_MAX_BUFFER_AGE). A test's own override_settings still wins."""
    from django_pageviews import ranking
    from django_pageviews.redis.sync_batcher import batcher

    buffer.discard()
    batcher.discard()
    throttle.clear()
    salts.forget_memory()
    ranking._guesses.clear()
    held = HELD_WRITER if _rolled_back(request) else {}
    with override_settings(**held):
        yield
        buffer.discard()
        batcher.discard()


# Longer than any test: the writer flushes only a full batch, or when a test flushes.
HELD_WRITER = {"PAGEVIEW_MAX_BUFFER_AGE": 3600}


def _rolled_back(request: pytest.FixtureRequest) -> bool:
    """Whether the test runs in a transaction rolled back at its end (as pytest-django
    decides it, _django_db_helper)."""
    names = request.fixturenames
    if {"transactional_db", "live_server", "django_db_reset_sequences"} & set(names):
        return False
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        transaction, reset_sequences, *_ = validate_django_db(marker)
        return not (transaction or reset_sequences)
    return "db" in names


Request = tuple[str, str, dict[str, str]]  # method, path, headers


def asgi_requests(requests: Sequence[Request]) -> list[httpx.Response]:
    """Send all requests concurrently through Django's real ASGI application.

    The handler is built directly: ``get_asgi_application()`` would run ``django.setup()``
    again, and its logging set-up would detach pytest's log capture.
    """
    app = ASGIHandler()

    requests = [(m, p, {"user-agent": BROWSER_UA, **h}) for m, p, h in requests]

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return list(
                await asyncio.gather(*(client.request(m, p, headers=h) for m, p, h in requests))
            )

    return asyncio.run(run())


T = TypeVar("T")


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body; then close the database connection that asgiref's
    sync_to_async thread opened (Django closes such connections only per request)."""

    async def wrapped() -> T:
        try:
            return await main()
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(wrapped())


def asgi_get(path: str, **headers: str) -> httpx.Response:
    headers.setdefault("user-agent", BROWSER_UA)
    return asgi_requests([("GET", path, headers)])[0]


def wsgi_request(method: str, path: str, **headers: str) -> httpx.Response:
    """One request through Django's real WSGI application."""
    headers.setdefault("user-agent", BROWSER_UA)
    transport = httpx.WSGITransport(app=WSGIHandler())
    with httpx.Client(transport=transport, base_url=BASE_URL) as client:
        return client.request(method, path, headers=headers)


def wsgi_get(path: str, **headers: str) -> httpx.Response:
    return wsgi_request("GET", path, **headers)


def distinct_visitors(n: int) -> list[dict[str, Any]]:
    """Headers of ``n`` different visitors (the visitor hash includes the user agent)."""
    return [{"user-agent": f"{BROWSER_UA} visitor/{i}"} for i in range(n)]


@pytest.fixture(params=["in-process", "redis"])
def pipeline(request: pytest.FixtureRequest) -> str:
    """Run a test once per path: the in-process buffer, and Redis (the redis_url fixture
    switches PAGEVIEW_ASYNC_PROCESSING on)."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    return str(request.param)
