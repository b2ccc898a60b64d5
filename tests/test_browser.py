"""The demo in a real browser (headless Chromium, served by uvicorn): the admin is styled,
the dashboard draws the recorded views exactly, anonymous users see no figure, and a cached
page counts through its beacon exactly once per visitor.

Marked ``browser``: ``-m "not browser"`` deselects them where no Chromium can be
installed; anywhere else a missing Chromium fails them (tests/browser.py says how to fix).
The dashboard's screenshot is saved under ``PAGEVIEWS_ARTIFACTS`` (a directory; the
test's tmp_path by default) and its path printed.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browser import (
    DASHBOARD_PATH,
    VIEWPORT,
    Demo,
    chromium,
    demo_data,
    log_in,
    serving_demo,
)
from tests.conftest import BROWSER_UA

pytestmark = pytest.mark.browser

CHART_DAYS = 30  # the dashboard's default period: the last 30 days


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with serving_demo(tmp_path_factory.mktemp("demo")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # its own cookies: logged out
    yield context.new_page()
    context.close()


def expected_by_day(today: date) -> Counter[date]:
    by_day: Counter[date] = Counter()
    for series in demo_data.HISTORY.values():
        for index, views in enumerate(series):
            by_day[today - timedelta(days=len(series) - 1 - index)] += views
    return by_day


def cells(page: Page, table: str) -> list[list[str]]:
    """The body rows of ``table`` (a selector) as text cells."""
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{table} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))",
    )
    return rows


def test_the_admin_is_styled(demo: Demo, page: Page) -> None:
    stylesheets: dict[str, int] = {}
    page.on(
        "response",
        lambda r: stylesheets.__setitem__(r.url, r.status) if r.url.endswith(".css") else None,
    )
    page.goto(f"{demo.base}/admin/login/")
    assert stylesheets[f"{demo.base}/static/admin/css/base.css"] == 200
    assert set(stylesheets.values()) == {200}
    # The admin's header colours, not a browser's default (transparent, black text).
    header = page.eval_on_selector(
        "#header",
        "e => { const s = getComputedStyle(e); return [s.backgroundColor, s.color]; }",
    )
    assert header[0] not in ("rgba(0, 0, 0, 0)", "transparent")
    assert header[1] != "rgb(0, 0, 0)"


def test_the_dashboard_draws_the_recorded_views(
    demo: Demo, page: Page, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_in(page, demo.base, DASHBOARD_PATH)
    by_day = expected_by_day(demo.today)
    history = demo_data.HISTORY
    last_7 = sum(by_day[demo.today - timedelta(days=i)] for i in range(7))
    total = sum(by_day.values())
    assert (by_day[demo.today], last_7, total) == (17, 204, 317)  # HISTORY, summed by hand

    # The totals table.
    # (The seeded history holds daily totals only: no visitor was recorded.)
    assert cells(page, "#pv-totals-table")[:3] == [
        ["Today", str(by_day[demo.today]), "0", "0.0"],
        ["Last 7 days", str(last_7), "0 visitor-days", "0.0"],
        ["Last 30 days", str(total), "0 visitor-days", "0.0"],
    ]
    assert page.text_content("#pv-pending") == "0"

    # The chart: its title, one bar per day of the last 30 with the day's views, drawn in
    # proportion (the tallest history day fills the axis up to its round top), and the
    # table of the same figures.
    days = [demo.today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    title = f"Views per day, Last 30 days ({total} views)"
    assert page.text_content("#pv-chart-heading") == title
    assert page.text_content("svg.pv-chart > title") == "Views per day, Last 30 days"
    bars = page.eval_on_selector_all(
        "svg.pv-chart rect.pv-bar",
        "bars => bars.map(b => [b.dataset.day, Number(b.dataset.views), "
        "b.getBoundingClientRect().height])",
    )
    assert [(day, views) for day, views, _ in bars] == [(d.isoformat(), by_day[d]) for d in days]
    heights = {views: height for _, views, height in bars}
    assert heights[0] == 0
    tallest = max(by_day.values())
    for views, height in heights.items():
        assert height == pytest.approx(heights[tallest] * views / tallest, abs=0.5)
    assert cells(page, "#pv-daily-table") == [[d.isoformat(), str(by_day[d]), "0"] for d in days]

    # The most viewed pages, view names and articles.
    per_article = {slug: sum(series) for slug, series in history.items()}
    ranked = sorted(per_article, key=lambda slug: -per_article[slug])
    assert cells(page, "#pv-top-pages") == [
        [f"/articles/{slug}/", str(per_article[slug])] for slug in ranked
    ]
    assert cells(page, "#pv-top-views") == [["article-detail", str(total)]]
    titles = dict(zip(history, demo_data.TOPICS, strict=False))
    assert cells(page, "[id='pv-top-blog.article']") == [
        [titles[slug], str(per_article[slug])] for slug in ranked
    ]

    artifacts = Path(os.environ.get("PAGEVIEWS_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\ndashboard screenshot: {shot}")


def test_anonymous_users_get_the_login_page_and_no_figures(demo: Demo, page: Page) -> None:
    response = page.goto(demo.base + DASHBOARD_PATH)
    assert response is not None and response.status == 200  # after the redirect
    assert page.url == f"{demo.base}/admin/login/?next={DASHBOARD_PATH}"
    assert page.locator("#id_username").count() == 1
    assert page.locator("#pv-totals-table, svg.pv-chart, #pv-top-pages").count() == 0


def test_a_cached_page_counts_through_its_beacon_exactly_once(
    tmp_path: Path, browser: Browser
) -> None:
    """The demo's article from the page cache (cache_page) in a real browser: its beacon
    fires (204) and the article's count rises by exactly one per visitor, for the fresh
    render and for a cached copy alike; a reload within the throttle window adds nothing.
    (Headless Chromium's own user agent is a crawler's: the visitors use a browser's.)
    A demo of its own: the module's is read by the dashboard test, whose totals this
    one's views would change."""
    with serving_demo(tmp_path) as demo:
        _show_cached_article(demo, browser)


def _show_cached_article(demo: Demo, browser: Browser) -> None:
    with closing(sqlite3.connect(demo.database)) as connection:
        (pk,) = connection.execute(
            "SELECT id FROM blog_article WHERE slug = 'article-1'"
        ).fetchone()

    def views() -> int:
        counter = f"{demo.base}/pageviews/counter.json?model=blog.article&pk={pk}"
        answer: int = httpx.get(counter, headers={"cache-control": "no-cache"}).json()["views"]
        return answer

    def show(user_agent: str) -> None:
        context = browser.new_context(viewport=VIEWPORT, user_agent=user_agent)
        page = context.new_page()
        with page.expect_response(lambda r: "/pageviews/beacon/" in r.url) as beacon:
            page.goto(f"{demo.base}/cached/articles/article-1/")
        assert beacon.value.status == 204
        context.close()

    before = views()
    show(BROWSER_UA)  # renders the page (and caches it)
    assert views() == before + 1
    show(BROWSER_UA)  # the same visitor again, within the throttle window: a cached copy
    assert views() == before + 1
    show(BROWSER_UA.replace("Chrome/131", "Chrome/130"))  # another visitor, a cached copy
    assert views() == before + 2
