"""The test settings, with the app's log on the server's output: the restart-fault tests
read what the server said about the views it could not write."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timed": {"format": "%(asctime)s %(threadName)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "loggers": {"django_pageviews": {"handlers": ["console"], "level": "INFO"}},
}

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # The outage on SQLite is a lock the test holds: each statement waits 0.5 s for it, not
    # 5 (an attempt makes several), so that the bounds under test are what takes the time.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 0.5  # noqa: F405
