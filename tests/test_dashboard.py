"""The admin dashboard: exact figures from views recorded through the package's own paths,
who may see it, the custom range, the SVG chart and its table, and reads that never touch
the raw table."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.dashboard import dashboard_url, render_dashboard
from django_pageviews.api.access import STATS_PERMISSION
from django_pageviews.dashboard.charts import daily_bars
from django_pageviews.events import Target
from django_pageviews.models import PageView
from django_pageviews.pipeline_health import STALL_FACTOR, drain_interval, draining
from django_pageviews.recorder import flush
from tests.conftest import asgi_requests
from tests.history import article_target, days_ago, record_pending, store, store_visitors, visit
from tests.models import Article

pytestmark = pytest.mark.django_db(transaction=True)

PAGEVIEW_TABLE = re.compile(rf"\b{PageView._meta.db_table}\b")
BOT = {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}


def user(name: str, staff: bool = True, permitted: bool = True) -> User:
    person = User.objects.create_user(name, password="x", is_staff=staff)
    if permitted:
        app_label, codename = STATS_PERMISSION.split(".")
        person.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return person


def logged_in(person: User) -> Client:
    client = Client()
    client.force_login(person)
    return client


@pytest.fixture
def staff() -> Client:
    return logged_in(user("staff"))


# -- reading the page ----------------------------------------------------------------------

TAGS = re.compile(r"<[^>]+>")


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<(section|table)[^>]*id="{re.escape(section_id)}".*?</\1>', html, re.S)
    assert match is not None, f"no #{section_id}"
    return match.group(0)


def rows(html: str, section_id: str) -> list[list[str]]:
    """The body rows of the table in a section, as text cells."""
    body = section(html, section_id)
    body = body[body.index("<tbody>") :] if "<tbody>" in body else ""
    return [
        [TAGS.sub("", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def cell(html: str, cell_id: str) -> str:
    match = re.search(rf'id="{re.escape(cell_id)}"[^>]*>(.*?)</td>', html, re.S)
    assert match is not None, f"no #{cell_id}"
    return TAGS.sub("", match.group(1)).strip()


def bars(html: str) -> list[tuple[str, int]]:
    return [(day, int(n)) for day, n in re.findall(r'data-day="([\d-]+)" data-views="(\d+)"', html)]


def page(client: Client, query: str = "") -> str:
    response = client.get(dashboard_url() + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return response.content.decode()


# -- the figures ---------------------------------------------------------------------------


@pytest.fixture
def history(settings: Any) -> tuple[Article, Article]:
    """Views of two articles and a plain page over 40 days, written as drains write them,
    today's through the middleware, two still pending, two bot requests not counted."""
    # The in-process writer thread leaves the pending views alone for the test's length.
    settings.PAGEVIEW_MAX_BUFFER_AGE = settings.PAGEVIEW_BUFFER_TIMEOUT = 3600
    first = Article.objects.create(title="First", slug="first")
    second = Article.objects.create(title="Second", slug="second")
    store(article_target(first), 40, age=10)
    store(article_target(second), 5, age=3)
    store(Target("/plain/", "plain", "", "", ""), 2, age=40)
    store_visitors(age=10, n=6)
    store_visitors(age=3, n=4)
    store_visitors(age=40, n=2)
    visit(f"/articles/{first.pk}/", 3)
    asgi_requests([("GET", "/plain/", BOT), ("GET", "/plain/", BOT)])
    flush()
    record_pending(article_target(first), 2, age=0)  # recorded, not written yet
    return first, second


def test_the_dashboard_shows_the_recorded_views(
    pipeline: str, history: tuple[Article, Article], staff: Client
) -> None:
    first, second = history
    html = page(staff)
    # Visitors: today's 3 through the middleware (the pending views have none), 4 and 6
    # stored 3 and 10 days ago; over several days, visitor-days and their daily average.
    assert rows(html, "pv-totals-table") == [
        ["Today", "3", "3", "3.0"],
        ["Last 7 days", "8", "7 visitor-days", "1.0"],
        ["Last 30 days", "48", "13 visitor-days", "0.4"],
        ["Last minutes (recorded, not written yet)", "2", "", ""],
    ]
    # The chart: a bar per day of the last 30, the written views of each; the table too.
    expected = {days_ago(10): 40, days_ago(3): 5, days_ago(0): 3}
    days = [days_ago(n) for n in range(29, -1, -1)]
    series = [(d.isoformat(), expected.get(d, 0)) for d in days]
    assert bars(html) == series
    people = {days_ago(10): 6, days_ago(3): 4, days_ago(0): 3}
    assert [tuple(r) for r in rows(html, "pv-daily-table")] == [
        (d, str(n), str(people.get(date.fromisoformat(d), 0))) for d, n in series
    ]
    assert "Views per day, Last 30 days (48 views)" in html
    # Most-viewed lists are live: they include the two views not written yet.
    a, b = f"/articles/{first.pk}/", f"/articles/{second.pk}/"
    assert rows(html, "pv-top-pages") == [[a, "45"], [b, "5"]]
    assert rows(html, "pv-top-views") == [["article-detail", "50"]]
    assert rows(html, "pv-top-tests.article") == [["First", "45"], ["Second", "5"]]
    assert rows(html, "pv-skipped") == [["bot", "2"]]
    if pipeline == "redis":
        assert (cell(html, "pv-redis-pending"), cell(html, "pv-buffered")) == ("2", "0")
        assert cell(html, "pv-draining") == "draining"
        assert cell(html, "pv-aside") == "0 / 0"
        assert re.fullmatch(r"\d+ s ago", cell(html, "pv-last-drain"))
    else:
        assert cell(html, "pv-buffered") == "2"
        assert "pv-redis-pending" not in html
    assert cell(html, "pv-dropped") == "0"


def test_a_custom_range(history: tuple[Article, Article], staff: Client) -> None:
    start, end = days_ago(45), days_ago(35)
    html = page(staff, f"start={start}&end={end}")
    label = f"{start} to {end}"
    assert rows(html, "pv-totals-table")[3] == [label, "2", "2 visitor-days", "0.2"]
    assert rows(html, "pv-totals-table")[2] == ["Last 30 days", "48", "13 visitor-days", "0.4"]
    assert len(bars(html)) == 11
    assert dict(bars(html)) == {
        (start + timedelta(days=i)).isoformat(): 2 if i == 5 else 0 for i in range(11)
    }
    assert rows(html, "pv-top-pages") == [["/plain/", "2"]]
    assert rows(html, "pv-top-views") == [["plain", "2"]]
    assert 'id="pv-top-tests.article"' not in html  # no article viewed in that range
    assert rows(html, "pv-skipped") == []  # the bots came today
    # A range overlapping the last 30 days counts each day once.
    html = page(staff, f"start={days_ago(40)}&end={days_ago(3)}")
    assert rows(html, "pv-totals-table")[3][1] == "47"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("start={d5}&end={d6}", "The range must start on or before its last day."),
        ("start={d0}&end={tomorrow}", "The range cannot end after today."),
        ("start={long}&end={d0}", "The range can span at most 366 days."),
        ("start=2026-02-30&end={d0}", "Enter a valid date."),
        ("start={d5}", "This field is required."),
    ],
)
def test_an_invalid_range_is_refused_and_the_last_30_days_shown(
    staff: Client, query: str, error: str
) -> None:
    today = days_ago(0)
    values = {
        "d0": today,
        "d5": days_ago(5),
        "d6": days_ago(6),
        "tomorrow": today + timedelta(days=1),
        "long": today - timedelta(days=366),
    }
    html = page(staff, query.format(**values))
    assert error in html
    assert len(bars(html)) == 30
    assert len(rows(html, "pv-totals-table")) == 4  # no custom row


def test_a_range_of_a_year_is_accepted(staff: Client) -> None:
    html = page(staff, f"start={days_ago(365)}&end={days_ago(0)}")
    assert len(bars(html)) == 366


# -- who may see it ------------------------------------------------------------------------


def test_anonymous_and_non_staff_are_sent_to_the_login_page(history: Any) -> None:
    url = dashboard_url()
    for client in (Client(), logged_in(user("visitor", staff=False, permitted=True))):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={url}"


def test_staff_without_the_permission_get_403_and_no_link(history: Any) -> None:
    client = logged_in(user("clerk", permitted=False))
    response = client.get(dashboard_url())
    assert response.status_code == 403
    assert b"/articles/" not in response.content
    assert dashboard_url().encode() not in client.get("/admin/").content


def test_the_admin_index_links_to_it_for_whoever_may_see_it(staff: Client) -> None:
    assert dashboard_url() == "/admin/django_pageviews/pageviewsdashboard/"
    index = staff.get("/admin/").content.decode()
    assert f'href="{dashboard_url()}"' in index
    assert "Page views dashboard" in index


def test_a_superuser_sees_it(admin_client: Client) -> None:
    assert admin_client.get(dashboard_url()).status_code == 200


# -- how it reads --------------------------------------------------------------------------


def test_no_query_reads_the_raw_table(
    pipeline: str, history: tuple[Article, Article], staff: Client
) -> None:
    assert PageView.objects.count() == 3  # raw rows exist (today's, through the middleware)
    with CaptureQueriesContext(connection) as queries:
        page(staff)
        page(staff, f"start={days_ago(45)}&end={days_ago(0)}")
    assert queries.captured_queries
    raw = [q["sql"] for q in queries.captured_queries if PAGEVIEW_TABLE.search(q["sql"])]
    assert raw == []
    # Statements per page: session, user and permissions, the days' totals, a round or
    # two per most-viewed list, one seek per viewed model, the requests not counted and
    # the health; none per view. 15 (in-process) and 19 (Redis) for the first page here;
    # the bound leaves room for ranking.py's rounds, which depend on the data.
    assert len(queries.captured_queries) <= 2 * 25


def test_the_benchmark_renders_it_without_a_request_cycle(
    history: tuple[Article, Article],
) -> None:
    html = render_dashboard()
    assert rows(html, "pv-totals-table")[0] == ["Today", "3", "3", "3.0"]
    html = render_dashboard(f"start={days_ago(45)}&end={days_ago(35)}")
    assert len(bars(html)) == 11


# -- the chart -----------------------------------------------------------------------------


def test_the_chart_has_a_title_and_a_bar_per_day_scaled_to_a_round_top() -> None:
    day = date(2026, 1, 1)
    series = [(day + timedelta(days=i), n) for i, n in enumerate([0, 10, 35, 70])]
    svg = str(daily_bars(series, "Views <per> day"))
    assert svg.startswith('<svg class="pv-chart"') and svg.endswith("</svg>")
    assert '<title id="pv-chart-title">Views &lt;per&gt; day</title>' in svg
    assert bars(svg) == [(d.isoformat(), n) for d, n in series]
    heights = [float(h) for h in re.findall(r'<rect[^>]* height="([\d.]+)"', svg)]
    assert heights == [0.0, 18.6, 65.1, 130.2]  # of 186 px for a top of 100
    assert ">100</text>" in svg and ">0</text>" in svg
    assert "<title>2026-01-03: 35 views</title>" in svg
    assert "2026-01-01" in svg and "2026-01-04" in svg  # first and last day labelled
    assert bars(str(daily_bars([], "Nothing"))) == []


# -- the pipeline's health -----------------------------------------------------------------


def redis_report(pending: int, oldest: float | None, last_flush_at: int | None) -> dict[str, Any]:
    counters = {} if last_flush_at is None else {"last_flush_at": last_flush_at}
    return {
        "async_processing": True,
        "redis": {
            "pending_views": pending,
            "oldest_pending_age_seconds": oldest,
            "counters": counters,
        },
    }


def test_draining_is_judged_by_how_long_views_wait() -> None:
    now = 1_000_000.0
    limit = STALL_FACTOR * drain_interval()
    assert limit == 120.0
    assert draining(redis_report(0, None, None), now) == {
        "mode": "redis",
        "alive": None,  # nothing waits: nothing to judge by
        "last_drain_age_seconds": None,
        "stall_after_seconds": limit,
    }
    assert draining(redis_report(5, 30.0, int(now) - 45), now)["alive"] is True
    stalled = draining(redis_report(5, limit + 1, int(now) - 600), now)
    assert (stalled["alive"], stalled["last_drain_age_seconds"]) == (False, 600.0)
    in_process = draining({"async_processing": False}, now)
    assert (in_process["mode"], in_process["alive"]) == ("in-process", True)


def test_the_page_renders_when_redis_is_down(settings: Any, staff: Client) -> None:
    # Async mode with the tests' default Redis URL: a socket that cannot exist.
    settings.PAGEVIEW_ASYNC_PROCESSING = True
    html = page(staff)
    assert "Redis is not reachable" in html
    assert rows(html, "pv-totals-table")[0] == ["Today", "0", "0", "0.0"]


def test_the_page_keeps_the_process_redis_connection(redis_url: str, staff: Client) -> None:
    # A web process's other threads share the client: a dashboard load must not cut their
    # connections (it did: every live read after it reconnected, ~1 ms).
    from django_pageviews.redis.client import get_client

    before = get_client().client_id()
    assert "Redis is not reachable" not in page(staff)
    assert get_client().client_id() == before
