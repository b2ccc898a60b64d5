"""``python -m tests.screenshot docs/images/dashboard.png``: the README's dashboard
screenshot, drawn as the browser tests draw theirs (scripts/dashboard_screenshot.sh)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()  # tests.browser reads a model's table name

from tests.browser import dashboard_screenshot  # noqa: E402

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        saved = dashboard_screenshot(Path(sys.argv[1]).resolve(), Path(work))
    sys.stdout.write(f"Dashboard screenshot: {saved}\n")
