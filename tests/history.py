"""Views recorded through the package's own paths, for the tests of the stats API and
the public counter: real requests through the middleware (today), a batch written by the
storage writer (past days, as a drain writes them), and events handed to the configured
pipeline with an earlier timestamp (views of past days still pending)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import date, timedelta

from django_pageviews.events import PK, PageViewEvent, Target, current_day
from django_pageviews.recorder import record
from django_pageviews.storage import write_batch
from tests.conftest import asgi_requests, distinct_visitors
from tests.models import Article

DAY = 86_400


def visit(path: str, n: int, first_visitor: int = 0) -> None:
    """``n`` views of ``path`` today, by distinct visitors, through ASGI and the middleware."""
    visitors = distinct_visitors(first_visitor + n)[first_visitor:]
    responses = asgi_requests([("GET", path, h) for h in visitors])
    assert [r.status_code for r in responses] == [200] * n


def article_target(article: Article) -> Target:
    """The target the middleware records for ``/articles/<pk>/``."""
    return Target(
        f"/articles/{article.pk}/", "article-detail", "tests.article", PK, str(article.pk)
    )


def days_ago(n: int) -> date:
    return current_day() - timedelta(days=n)


def store(target: Target, views: int, age: int) -> None:
    """Write ``views`` views of ``target``, ``age`` days ago, as one drained batch."""
    write_batch(uuid.uuid4().hex, [], Counter({(days_ago(age), target): views}))


def store_visitors(age: int, n: int) -> None:
    """Write ``n`` distinct visitors ``age`` days ago, as a counts-only batch names them."""
    day = days_ago(age)
    write_batch(uuid.uuid4().hex, [], visitors={(day, f"{age:04x}{i:028x}") for i in range(n)})


def record_pending(target: Target, views: int, age: int) -> None:
    """Hand ``views`` views of ``target`` made ``age`` days ago to the pipeline (they stay
    pending until a flush)."""
    when = time.time() - age * DAY
    for _ in range(views):
        record(PageViewEvent(uuid.uuid4().hex, when, target, None, "", ""))
