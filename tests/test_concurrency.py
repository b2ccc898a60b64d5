"""Many concurrent requests through the real ASGI application give exact counts."""

from __future__ import annotations

import pytest
from django.db.models import Sum
from django.test import override_settings

from django_pageviews.models import PageView, PageViewDaily, ProcessedBatch
from django_pageviews.recorder import flush
from tests.conftest import BROWSER_UA, asgi_requests
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

N = 1000


@override_settings(PAGEVIEW_THROTTLE_SECONDS=0)
def test_thousand_concurrent_views_are_counted_exactly() -> None:
    article = Article.objects.create(title="Hot", slug="hot")
    url = f"/async-articles/{article.pk}/"
    ua = {"user-agent": BROWSER_UA}
    noise = [
        ("GET", "/static/app.css", ua),
        ("GET", "/admin/login/", ua),
        ("GET", url, {**ua, "x-requested-with": "XMLHttpRequest"}),
        ("POST", "/form/", ua),
        ("GET", "/status/404/", ua),
        ("GET", "/status/500/", ua),
    ]
    requests = [("GET", url, ua)] * N + noise * 20
    responses = asgi_requests(requests)
    assert sum(r.status_code == 200 for r in responses[:N]) == N
    flush()
    assert PageView.get_view_count(obj=article) == N
    assert PageView.get_view_count(url=url) == N
    assert PageView.get_view_count() == N
    assert PageView.objects.filter(object_id=str(article.pk), url=url).count() == N
    assert PageView.objects.count() == N
    assert PageViewDaily.objects.aggregate(total=Sum("views"))["total"] == N
    assert ProcessedBatch.objects.aggregate(total=Sum("views"))["total"] == N
