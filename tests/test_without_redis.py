"""Without the ``async`` extra: the in-process pipeline imports, counts and reads with the
redis package missing, and loads nothing of the Redis transport (django_pageviews.redis)."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import ROOT, subprocess_env

# `import redis` raises ImportError, as where the package is not installed.
CODE = """
import sys
sys.modules["redis"] = None
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import django_pageviews.admin, django_pageviews.middleware, django_pageviews.urls
import django_pageviews.templatetags.pageview_tags
from django_pageviews import flush, record_view
from django_pageviews.models import PageView
record_view(url="/no-redis/", ip_address="203.0.113.7", user_agent="Mozilla/5.0 Firefox/130.0")
print(flush(), PageView.get_view_count(url="/no-redis/"))
loaded = [m for m in sys.modules if m.startswith("django_pageviews.redis")]
print(sorted(loaded) or "nothing")
"""


def test_the_in_process_pipeline_needs_no_redis(tmp_path: object) -> None:
    env = subprocess_env("")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/no-redis.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["1 1", "nothing"]
