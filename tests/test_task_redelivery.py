"""``buffer_page_view`` through a real Celery worker and Redis broker: a task delivered
twice (same task id, as acks_late redelivers one whose worker died) counts once, and a
view that cannot be stored now is retried rather than lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.db.models import Sum
from django.test import override_settings

from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.recorder import flush
from django_pageviews.schedules import BUFFER_TASK
from tests.processes import celery, running, subprocess_env, wait_for
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/by-task/"
WORKER = celery("-A", "tests.celery_app", "worker", "-l", "info", "--pool", "solo")


def stored() -> int:
    return int(PageViewDaily.objects.filter(url=URL).aggregate(n=Sum("views"))["n"] or 0)


def log_count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text) if log.exists() else 0


@pytest.fixture
def producer(private_redis: PrivateRedis) -> Iterator[Celery]:
    """A Celery client of the broker (the private Redis), as a web process would be."""
    app = Celery("producer", broker=private_redis.url, set_as_current=False)
    try:
        yield app
    finally:
        app.close()


def send(app: Celery, task_id: str) -> None:
    app.send_task(BUFFER_TASK, args=[URL], kwargs={"user_agent": "UA"}, task_id=task_id)


@pytest.mark.parametrize("mode", ["redis", "in-process"])
def test_a_task_delivered_twice_counts_once(
    private_redis: PrivateRedis, producer: Celery, tmp_path: Path, mode: str
) -> None:
    settings = {"PAGEVIEW_ASYNC_PROCESSING": "false"} if mode == "in-process" else {}
    env = subprocess_env(private_redis.url, **settings)
    task_id = str(uuid.uuid4())
    send(producer, task_id)
    send(producer, task_id)  # the same task again
    send(producer, str(uuid.uuid4()))  # another view: counted
    log = tmp_path / "worker.log"
    with running(WORKER, env, log):
        wait_for(lambda: log_count(log, "succeeded") == 3, "three deliveries done")
    flush()  # Redis into the database (the worker stopped first: nothing in flight)
    assert stored() == 2
    assert PageView.objects.filter(url=URL).count() == 2


def test_a_view_that_cannot_be_shipped_is_retried(
    private_redis: PrivateRedis, producer: Celery, tmp_path: Path
) -> None:
    views_redis = PrivateRedis()  # the page-view Redis, down when the task first runs
    try:
        env = subprocess_env(private_redis.url, PAGEVIEW_REDIS_URL=json.dumps(views_redis.url))
        send(producer, str(uuid.uuid4()))
        log = tmp_path / "worker.log"
        with running(WORKER, env, log):
            wait_for(lambda: log_count(log, "retry: Retry in") >= 1, "a retry")
            views_redis.start()
            wait_for(lambda: log_count(log, "succeeded") == 1, "the retried delivery")
        with override_settings(PAGEVIEW_REDIS_URL=views_redis.url):
            flush()
        assert stored() == 1
    finally:
        views_redis.close()


def test_called_directly_or_applied_in_process() -> None:
    from django_pageviews.tasks import buffer_page_view

    buffer_page_view(URL)  # a plain call: no task id, one view
    task_id = str(uuid.uuid4())
    buffer_page_view.apply(args=[URL], task_id=task_id)
    buffer_page_view.apply(args=[URL], task_id=task_id)
    assert stored() == 2
