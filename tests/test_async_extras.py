"""Async read API, the deploy check, early flushes and buffer_page_view on real services."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_pageviews.checks import check_redis_reachable
from django_pageviews.models import PageView, PageViewDaily
from django_pageviews.recorder import flush
from django_pageviews.redis.buffer import Keys
from django_pageviews.redis.sync_batcher import batcher
from django_pageviews.tasks import buffer_page_view
from tests.conftest import asgi_requests, distinct_visitors, run_async, wsgi_get
from tests.models import Article
from tests.processes import celery, free_port, running, subprocess_env, wait_for


@pytest.mark.django_db(transaction=True)
def test_async_read_api(redis_url: str) -> None:
    article = Article.objects.create(title="A", slug="a")
    asgi_requests([("GET", f"/async-articles/{article.pk}/", h) for h in distinct_visitors(4)])

    async def read() -> tuple[int, dict[object, int]]:
        return (
            await PageView.aget_view_count(obj=article),
            await PageView.aget_view_counts_for_objects([article]),
        )

    assert run_async(read) == (4, {article.pk: 4})


def test_deploy_check_needs_a_reachable_redis(redis_url: str) -> None:
    assert check_redis_reachable() == []
    with override_settings(PAGEVIEW_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        errors = check_redis_reachable()
        assert [e.id for e in errors] == ["django_pageviews.E030"]
        with pytest.raises(SystemCheckError, match="E030"):
            call_command("check", "--deploy", "--fail-level", "ERROR")
        call_command("check")  # without --deploy, no connection is attempted


@pytest.mark.django_db(transaction=True)
def test_buffer_page_view_task_records_a_view(redis_url: str) -> None:
    from django.contrib.contenttypes.models import ContentType

    article = Article.objects.create(title="A", slug="a")
    content_type = ContentType.objects.get_for_model(Article)
    buffer_page_view.run(
        url="/custom/",
        view_name="custom",
        content_type_id=content_type.pk,
        object_id=article.pk,
        ip_address="203.0.113.9",
        user_agent="UA",
    )
    assert PageView.get_view_count(obj=article) == 1  # shipped before the task returned
    assert flush() == 1
    row = PageView.objects.get()
    assert (row.url, row.view_name, row.content_object, row.ip_address) == (
        "/custom/",
        "custom",
        article,
        "203.0.113.0",
    )


@pytest.mark.django_db(transaction=True)
@override_settings(PAGEVIEW_EARLY_FLUSH_THRESHOLD=10, PAGEVIEW_EARLY_FLUSH_INTERVAL=30)
def test_a_large_backlog_triggers_one_early_flush(redis_url: str, tmp_path: Path) -> None:
    from tests.celery_app import app

    # The early flush sends through Celery's current app: make it this one, on this
    # test's Redis, with no connection pool left from another broker.
    app.conf.broker_url = redis_url
    app.close()
    app.set_current()
    app.set_default()
    worker = celery("-A", "tests.celery_app", "worker", "-l", "info", "--pool", "solo")
    log = tmp_path / "worker.log"
    try:
        with running(worker, subprocess_env(redis_url), log):
            for headers in distinct_visitors(12):
                wsgi_get("/plain/", **headers)
            batcher.ship_all()  # 12 pending >= 10: this shipment asks for a flush
            seen_after_ship = _redis_state(redis_url)
            wait_for(
                lambda: _stored() == 12,
                "the early flush",
                explain=lambda: (
                    f"after the shipment: {seen_after_ship}; "
                    f"now: {_redis_state(redis_url)}; worker log: {log.read_text()[-2000:]}"
                ),
            )
            for headers in distinct_visitors(24)[12:]:
                wsgi_get("/plain/", **headers)
            batcher.ship_all()  # past the threshold again, but inside the interval
            time.sleep(1)  # a second task, had one been sent, would have run by now
            wait_for(lambda: log.read_text().count("succeeded") == 1, "the worker's log")
    finally:
        app.close()
    assert log.read_text().count("process_pageview_buffer[") == 2  # received + succeeded
    assert _stored() == 12
    assert flush() == 12


def _redis_state(url: str) -> str:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        keys = Keys.current()
        return (
            f"keys {sorted(k[:48] for k in client.keys('*'))}, pending fields "
            f"{client.hlen(keys.pending)}, dims total {client.hget(keys.dims, 't')!r}"
        )
    finally:
        client.close()


def _stored() -> int:
    from django.db.models import Sum

    return PageViewDaily.objects.aggregate(total=Sum("views"))["total"] or 0
