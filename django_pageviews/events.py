"""The page-view event: everything the request knew, nothing that needs the database."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import NamedTuple

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone

# Longest path kept. 700 characters of utf8mb4 stay inside InnoDB's 3072-byte index limit,
# so the URL column can be indexed on MariaDB/MySQL as on the other databases.
URL_MAX_LENGTH = 700
# And at most this many UTF-8 bytes: PostgreSQL cannot index a row over 2704 bytes, which
# 700 four-byte characters (emoji) exceed; 700 characters of up to three bytes stay whole.
URL_MAX_BYTES = 2600
VIEW_NAME_MAX_LENGTH = 200
SLUG_MAX_LENGTH = 255  # a slug looked up by the writer; longer ones find nothing anyway
USER_AGENT_MAX_LENGTH = 512
OBJECT_ID_MAX_LENGTH = 64
VISITOR_HASH_LENGTH = 32  # hex digits of the daily visitor hash (privacy.py)
# The lookup field that means "the value is the primary key".
PK = "pk"
# Separators of the compact forms in Redis (see wire.py); never part of stored text.
UNIT = "\x1f"
RECORD = "\x1e"
NUL = "\x00"


class Target(NamedTuple):
    """What was viewed. The object is named by model label and one field's value, so that a
    slug can be resolved to a primary key later, by the writer, in one query per batch."""

    url: str
    view_name: str  # "" when the URL did not resolve to a named view
    model: str  # "app_label.modelname" or ""
    field: str  # PK, a slug field name, or ""
    value: str  # the field's value, or ""


class PageViewEvent(NamedTuple):
    """One view, as compact as a tuple: it may wait in memory or travel through Redis."""

    event_id: str  # uuid4 hex: makes a replayed raw row detectable
    timestamp: float  # seconds since the epoch
    target: Target
    ip_address: str | None  # already anonymised unless PAGEVIEW_STORE_IP
    user_agent: str
    visitor_hash: str  # "" until the batch computes it (privacy.with_visitor_hashes)
    # In memory only, never shipped or stored: the full address until the hash is made,
    # and the key that throttles this visitor and page across processes.
    client_ip: str | None = None
    throttle_key: str = ""


def local_day(timestamp: float) -> date:
    """The day a view counts for: the site's calendar (TIME_ZONE), not UTC's."""
    return _local_day_of_minute(int(timestamp // 60))


def current_day() -> date:
    """The site's current day. Unlike ``timezone.localdate()``, also with USE_TZ = False."""
    return local_day(time.time())


@lru_cache(maxsize=256)
def _local_day_of_minute(minute: int) -> date:
    # Every UTC offset is a whole number of minutes, so one minute has one local day; the
    # conversion costs microseconds, and a batch asks it once per view.
    # The site's zone, not one a request may have activated for its user.
    moment = datetime.fromtimestamp(minute * 60, tz=UTC)
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


@receiver(setting_changed)
def _time_zone_changed(*, setting: str, **kwargs: object) -> None:
    if setting in ("TIME_ZONE", "USE_TZ"):
        _local_day_of_minute.cache_clear()


def stored_text(text: str, limit: int | None = None) -> str:
    """``text`` as stored: the two separator characters percent-encoded, should a path,
    slug or user agent contain them, and NUL, which PostgreSQL refuses in text (one such
    view would fail the whole batch it shares with others); then cut to ``limit``
    characters, never inside an escape, so that the column always takes it."""
    if UNIT in text or RECORD in text or NUL in text:
        text = text.replace(UNIT, "%1F").replace(RECORD, "%1E").replace(NUL, "%00")
    if limit is None or len(text) <= limit:
        return text
    text = text[:limit]
    escape = text.find("%", limit - 2)
    return text[:escape] if escape != -1 else text


def stored_url(path: str) -> str:
    """A path as it is stored and counted: separators encoded, capped. Reads by URL use it
    too, so that a long path finds its views."""
    url = stored_text(path, URL_MAX_LENGTH)
    if len(url) * 4 > URL_MAX_BYTES and len(url.encode()) > URL_MAX_BYTES:
        url = stored_text(url, len(url.encode()[:URL_MAX_BYTES].decode(errors="ignore")))
    return url
