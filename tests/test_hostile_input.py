"""Hostile requests through the real ASGI and WSGI applications: the response is exactly
what it is without the middleware, and the good views around them are counted exactly."""

from __future__ import annotations

import string
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_pageviews.buffer import buffer
from django_pageviews.manual import record_view
from django_pageviews.middleware import MIDDLEWARE_PATH
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import BROWSER_UA, asgi_requests

pytestmark = pytest.mark.django_db(transaction=True)

WITHOUT_MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]

# Printable, non-ASCII and percent signs: httpx encodes them; control characters it refuses.
QUERY_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))

# Header values as bytes: binary, huge, invalid addresses, everything at once.
header_bytes = st.one_of(
    st.binary(max_size=64).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from([b"not-an-ip", b"999.1.1.1", b"[::1", b"1.2.3.4, , ,", b"unknown", b""]),
    st.integers(min_value=1_000, max_value=100_000).map(lambda n: b"A" * n),
    st.text(alphabet=string.printable.strip(), max_size=50).map(str.encode),
)
header_names = st.sampled_from(
    [
        "user-agent",
        "x-forwarded-for",
        "x-real-ip",
        "forwarded",
        "cf-connecting-ip",
        "x-requested-with",
        "dnt",
        "sec-gpc",
        "sec-purpose",
        "referer",
        "cookie",
    ]
)
paths = st.one_of(
    st.sampled_from(
        [
            "/plain/",
            "/async/",
            "/stream/",
            "/boom/",
            "/status/404/",
            "/articles/999999/",
            "/by-slug/%FF%FE/",
            "/long/" + "x" * 5000,
        ]
    ),
    st.text(alphabet=string.ascii_letters + "/%._-~0", max_size=200).map(lambda p: "/" + p),
    st.lists(
        st.tuples(st.text(QUERY_CHARS, max_size=8), st.text(QUERY_CHARS, max_size=8)), max_size=300
    ).map(lambda qs: "/plain/?" + "&".join(f"{k}={v}" for k, v in qs)),
)
methods = st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "PUT"])


def send_wsgi(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    with httpx.Client(
        transport=httpx.WSGITransport(app=WSGIHandler()), base_url="http://testserver"
    ) as client:
        response = client.request(method, path, headers=headers)
        return response.status_code, response.content


def send_asgi(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    import asyncio

    async def run() -> tuple[int, bytes]:
        transport = httpx.ASGITransport(app=ASGIHandler())  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.request(method, path, headers=headers)
            return response.status_code, response.content

    return asyncio.run(run())


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume:Warning")
@pytest.mark.parametrize("send", [send_asgi, send_wsgi], ids=["asgi", "wsgi"])
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=methods, path=paths, headers=st.lists(st.tuples(header_names, header_bytes), max_size=6)
)
def test_hostile_requests_get_the_response_they_would_without_us(
    send: Any, method: str, path: str, headers: list[tuple[str, bytes]]
) -> None:
    raw = [(name.encode(), value) for name, value in headers]
    try:
        with_us = send(method, path, raw)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError):
        assume(False)  # the HTTP client itself refuses to send it: not a case for us
    with override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE):
        without_us = send(method, path, raw)
    assert with_us == without_us


def test_good_views_around_hostile_ones_are_counted_exactly() -> None:
    hostile = [
        ("GET", "/plain/", {"user-agent": "A" * 100_000}),
        ("GET", "/plain/", {"x-forwarded-for": "not-an-ip, 999.1.1.1, [::1"}),
        ("GET", "/by-slug/%FF%FE/", {}),
        ("GET", "/long/" + "y" * 5000, {}),
        ("GET", "/plain/?" + "&".join(f"k{i}=v" for i in range(3000)), {}),
        ("POST", "/form/", {}),
        ("GET", "/boom/", {}),
        # NUL, which PostgreSQL refuses in text, in a path, a slug and a user agent
        ("GET", "/long/a%00b", {}),
        ("GET", "/docs/x%00y/", {}),
    ]
    good = [("GET", f"/pages/{i}/", {"user-agent": f"{BROWSER_UA} v{i}"}) for i in range(20)]
    responses = asgi_requests(hostile + good)
    assert [r.status_code for r in responses[len(hostile) :]] == [200] * 20
    flush()
    assert buffer.pending_count() == 0  # all written: no view failed the batch
    assert sum(PageView.get_view_count(url=f"/pages/{i}/") for i in range(20)) == 20
    assert PageView.objects.filter(url="/long/a%00b/").count() == 1  # trailing slash added
    assert PageView.objects.filter(url="/docs/x%00y/").count() == 1


def test_a_nul_in_a_user_agent_is_stored_encoded() -> None:
    record_view("/plain/", user_agent="Mozilla/5.0 \x00 evil")
    assert flush() == 1
    assert PageView.objects.get().user_agent == "Mozilla/5.0 %00 evil"
