"""The demo served by a real uvicorn, seen through headless Chromium (Debian's package,
driven by Playwright), for tests/test_browser.py and scripts/dashboard_screenshot.sh.

The demo runs on its own SQLite file with its own ``DEMO_DIR``, not on the test database:
the browser tests check what the pages draw, storage is tested on every database
elsewhere, and a file of its own keeps each xdist worker apart (with a free port).

Chromium is Debian's (``apt-get install chromium chromium-driver``, which the test command
installs where it can); Playwright only drives it: ``playwright install`` is never run
and nothing is downloaded. A missing executable fails the tests, with the fix in the
message: deselect them with ``-m "not browser"`` where no browser can be installed.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType

from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from django_pageviews.models import ProcessedBatch
from tests.processes import (
    DEMO_DATABASE,
    ROOT,
    demo_env,
    free_port,
    manage,
    running,
    uvicorn,
    wait_until_serving,
)


def _load_demo_data() -> ModuleType:
    """example_asgi/blog/demo_data.py, loaded by its path: importing it through its
    package would run example_asgi/__init__.py, which creates the demo's Celery app in the
    test process (the current app, in place of the suite's)."""
    path = ROOT / "example_asgi" / "blog" / "demo_data.py"
    spec = importlib.util.spec_from_file_location("pageviews_demo_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_data = _load_demo_data()

CHROMIUM = Path(os.environ.get("PAGEVIEWS_CHROMIUM", "/usr/bin/chromium"))
# Headless and quiet: no GPU, /tmp instead of a small /dev/shm in containers, no
# background requests (updates, safe browsing) that a sandboxed CI cannot make.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
MISSING_CHROMIUM = (
    f"No Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium "
    "chromium-driver; scripts/test.sh does where it may), set PAGEVIEWS_CHROMIUM to "
    "another executable, or deselect the browser tests with -m 'not browser'."
)
VIEWPORT = ViewportSize(width=1280, height=900)
DASHBOARD_PATH = "/admin/django_pageviews/pageviewsdashboard/"


@dataclass(frozen=True)
class Demo:
    base: str  # http://127.0.0.1:<port>
    database: Path
    today: date  # the day seed_demo wrote the history up to


def history_day(database: Path) -> date:
    """The last day seed_demo's history covers ("today" when it ran), from its batch ids."""
    with closing(sqlite3.connect(database)) as connection:
        (last,) = connection.execute(
            f"SELECT MAX(batch_id) FROM {ProcessedBatch._meta.db_table} WHERE batch_id LIKE ?",
            (demo_data.HISTORY_BATCH_PREFIX + "%",),
        ).fetchone()
    return date.fromisoformat(last.removeprefix(demo_data.HISTORY_BATCH_PREFIX))


@contextmanager
def serving_demo(directory: Path) -> Iterator[Demo]:
    """The demo migrated, seeded with its history and served by uvicorn, for the block."""
    env = demo_env(directory)
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo", "--history")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = uvicorn("example_asgi.asgi:application", port)
    with running(command, env, directory / "uvicorn.log") as process:
        wait_until_serving(base + "/", process)
        database = directory / DEMO_DATABASE
        yield Demo(base, database, history_day(database))


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(MISSING_CHROMIUM)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Page, base: str, next_path: str) -> None:
    """Log in through the admin's login form as the demo superuser, landing on
    ``next_path``."""
    page.goto(f"{base}/admin/login/?next={next_path}")
    page.fill("#id_username", demo_data.DEMO_USERNAME)
    page.fill("#id_password", demo_data.DEMO_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def dashboard_screenshot(path: Path, directory: Path) -> Path:
    """Serve the demo with its history, open the dashboard as the demo superuser and save
    a full-page screenshot at ``path``."""
    with serving_demo(directory) as demo, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        log_in(page, demo.base, DASHBOARD_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        page.close()
    return path
