"""What the benchmarks share: paths, the Redis database they may wipe, realistic events,
and Markdown output. Importing this module does not configure Django."""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The only Redis database the benchmarks write to; they FLUSHDB it themselves.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
LOWEST_WRITABLE_DB = 12  # databases 0-11 belong to others on the shared server
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/bench")
CHROME_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
ANONYMISED_IP = "203.0.113.0"  # what privacy.anonymize_ip leaves of 203.0.113.57


def redis_client() -> Any:
    """A client on the benchmark database, configured as the package's own client."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    db = int(client.connection_pool.connection_kwargs.get("db", 0))
    if db < LOWEST_WRITABLE_DB:
        raise SystemExit(f"refusing to use Redis database {db}: the benchmarks wipe theirs")
    return client


def flush_redis(client: Any) -> None:
    client.flushdb(asynchronous=False)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a Django subprocess on bench.settings, free of the tests' knobs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAGEVIEW_", "TESTS_", "BENCH_")) and k != "DATABASE_URL"
    }
    env.update(DJANGO_SETTINGS_MODULE="bench.settings", PYTHONPATH=str(ROOT), **extra)
    return env


def realistic_event(page: int, now: float | None = None) -> Any:
    """One article view as the middleware builds it (an anonymised IP, a Chrome user
    agent, a 32-hex visitor hash, a uuid4 hex event id)."""
    from django_pageviews.events import PK, PageViewEvent, Target

    event_id = uuid.uuid4().hex
    return PageViewEvent(
        event_id=event_id,
        timestamp=time.time() if now is None else now,
        target=Target(f"/articles/{page}/", "article-detail", "tests.article", PK, str(page)),
        ip_address=ANONYMISED_IP,
        user_agent=CHROME_UA,
        visitor_hash=hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest(),
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"
