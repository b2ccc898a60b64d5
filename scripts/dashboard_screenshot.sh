#!/usr/bin/env bash
# Redraw docs/images/dashboard.png (the README's screenshot): the demo served by uvicorn on
# a fresh SQLite file with its seeded history (seed_demo --history), the dashboard opened
# in Debian's headless Chromium as the demo superuser, as tests/test_browser.py does.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh" async,test,demo
python -m tests.screenshot "${1:-docs/images/dashboard.png}"
