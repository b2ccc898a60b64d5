"""Only people are counted: crawlers, prefetches and (when honoured) DNT/GPC are not; and
the client address comes from forwarding headers only through trusted proxies."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from django.test import override_settings

from django_pageviews import stats
from django_pageviews.models import PageView
from django_pageviews.recorder import flush
from tests.conftest import CRAWLER_UA, asgi_get, wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)

Get = Callable[..., httpx.Response]
BOTH = pytest.mark.parametrize("get", [asgi_get, wsgi_get], ids=["asgi", "wsgi"])

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
]

CRAWLERS = [
    CRAWLER_UA,
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
    "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Wget/1.21.4",
]


def counter(name: str) -> int:
    return stats.snapshot().get(name, 0)


@BOTH
def test_browsers_are_counted(get: Get) -> None:
    for ua in BROWSERS:
        assert get("/plain/", **{"user-agent": ua}).status_code == 200
    assert PageView.get_view_count(url="/plain/") == len(BROWSERS)


@BOTH
@pytest.mark.parametrize("ua", [*CRAWLERS, "", "   "])
def test_crawlers_and_missing_user_agents_are_not(get: Get, ua: str) -> None:
    before = counter(stats.SKIP_BOT)
    assert get("/plain/", **{"user-agent": ua}).status_code == 200
    assert counter(stats.SKIP_BOT) - before == 1
    assert PageView.get_view_count() == 0


@override_settings(PAGEVIEW_BOT_PATTERNS=["uptime-monitor"])
@BOTH
def test_site_patterns_add_to_the_database(get: Get) -> None:
    get("/plain/", **{"user-agent": BROWSERS[0] + " uptime-monitor/2"})
    get("/plain/", **{"user-agent": CRAWLERS[0]})
    assert PageView.get_view_count() == 0


@BOTH
@pytest.mark.parametrize(
    "headers",
    [
        {"sec-purpose": "prefetch"},
        {"sec-purpose": "prefetch;prerender"},
        {"purpose": "prefetch"},
        {"x-moz": "prefetch"},
    ],
)
def test_prefetches_are_not_views(get: Get, headers: dict[str, str]) -> None:
    before = counter(stats.SKIP_PREFETCH)
    get("/plain/", **headers)
    assert counter(stats.SKIP_PREFETCH) - before == 1
    assert PageView.get_view_count() == 0


@BOTH
def test_dnt_and_gpc_are_counted_unless_honoured(get: Get) -> None:
    get("/plain/", **{"dnt": "1", "user-agent": BROWSERS[1]})
    get("/plain/", **{"sec-gpc": "1", "user-agent": BROWSERS[2]})
    assert PageView.get_view_count() == 2
    with override_settings(PAGEVIEW_RESPECT_DNT=True):
        dnt, gpc = counter(stats.SKIP_DNT), counter(stats.SKIP_GPC)
        get("/plain/", **{"dnt": "1", "user-agent": BROWSERS[3]})
        get("/plain/", **{"sec-gpc": "1", "user-agent": BROWSERS[4]})
        get("/plain/", **{"dnt": "0", "user-agent": BROWSERS[5]})
        assert (counter(stats.SKIP_DNT) - dnt, counter(stats.SKIP_GPC) - gpc) == (1, 1)
    assert PageView.get_view_count() == 3


def stored_ip(get: Get, **headers: str) -> str | None:
    with override_settings(PAGEVIEW_STORE_IP=True):
        assert get("/plain/", **headers).status_code == 200
    flush()
    row = PageView.objects.get()
    PageView.objects.all().delete()
    return row.ip_address


@BOTH
def test_forwarding_headers_are_ignored_unless_the_proxy_is_trusted(get: Get) -> None:
    spoofed = {"x-forwarded-for": "203.0.113.9", "x-real-ip": "203.0.113.10"}
    assert stored_ip(get, **spoofed) == "127.0.0.1"  # the socket peer
    with override_settings(PAGEVIEW_EXCLUDE_IP_ADDRESSES=["203.0.113.0/24"]):
        get("/plain/", **spoofed, **{"user-agent": BROWSERS[6]})
        # Counted (with the first view): a spoofed header cannot exclude its sender.
        assert PageView.get_view_count() == 2


@BOTH
@pytest.mark.parametrize(
    "settings, headers, expected",
    [
        (
            {"PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.1"]},
            {"x-forwarded-for": "203.0.113.9"},
            "203.0.113.9",
        ),
        # Walked from the right past trusted hops: the spoofed left part is not believed.
        (
            {"PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.0/8", "10.0.0.0/8"]},
            {"x-forwarded-for": "1.1.1.1, 198.51.100.4, 10.0.0.2"},
            "198.51.100.4",
        ),
        (
            {"PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.1"]},
            {"x-forwarded-for": "not-an-ip"},
            "127.0.0.1",
        ),
        (
            {"PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.1"]},
            {"x-forwarded-for": "203.0.113.9:4711"},
            "203.0.113.9",
        ),
        (
            {"PAGEVIEW_PROXY_COUNT": 2},
            {"x-forwarded-for": "1.1.1.1, 198.51.100.4, 10.0.0.2"},
            "198.51.100.4",
        ),
        ({"PAGEVIEW_PROXY_COUNT": 3}, {"x-forwarded-for": "10.0.0.2"}, "127.0.0.1"),
        (
            {"PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.1"], "PAGEVIEW_CLIENT_IP_HEADER": "Forwarded"},
            {"forwarded": 'for="[2001:db8::7]:4711";proto=https'},
            "2001:db8::7",
        ),
        (
            {"PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.1"], "PAGEVIEW_CLIENT_IP_HEADER": "X-Real-IP"},
            {"x-real-ip": "198.51.100.5"},
            "198.51.100.5",
        ),
        (
            {
                "PAGEVIEW_TRUSTED_PROXIES": ["127.0.0.1"],
                "PAGEVIEW_CLIENT_IP_HEADER": "CF-Connecting-IP",
            },
            {"cf-connecting-ip": "198.51.100.6", "x-forwarded-for": "1.1.1.1"},
            "198.51.100.6",
        ),
    ],
)
def test_client_address_behind_trusted_proxies(
    get: Get, settings: dict[str, object], headers: dict[str, str], expected: str
) -> None:
    with override_settings(**settings):
        assert stored_ip(get, **headers) == expected


CUBOT = (
    "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/76.0.3809.111 Mobile Safari/537.36"
)


def test_default_patterns_cost_a_phone_brand_and_an_empty_list_counts_it() -> None:
    """As documented under PAGEVIEW_BOT_PATTERNS: the 0.2.x word "bot" matches "CUBOT"."""
    wsgi_get("/plain/", **{"user-agent": CUBOT})
    assert PageView.get_view_count() == 0
    with override_settings(PAGEVIEW_BOT_PATTERNS=[]):
        wsgi_get("/plain/", **{"user-agent": CUBOT})
    assert PageView.get_view_count() == 1
