"""One page, one URL: the trailing-slash rule of ``PAGEVIEW_TRAILING_SLASH``.

A view that answers both ``/about`` and ``/about/`` shows one page; counted under both, its
views would be split over two rows and ``get_view_count(url=...)`` would find only half of
them. So the tracked path is normalised before it is stored, and every read or manual
record by URL applies the same rule, or it would look under a URL that is never stored.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import conf

APPEND = "append"
STRIP = "strip"
KEEP = "keep"


@cache
def trailing_slash_mode() -> str:
    """``PAGEVIEW_TRAILING_SLASH``, or, when it is None, what Django's ``APPEND_SLASH``
    implies: ``"append"`` when it is true (Django's default), else ``"keep"``. Cached
    (reading ``settings.APPEND_SLASH`` costs a few hundred ns) until either changes."""
    mode = conf.TRAILING_SLASH
    if mode is None:
        return APPEND if settings.APPEND_SLASH else KEEP
    return mode


def normalize_path(path: str) -> str:
    """``path`` (no query string) under the trailing-slash rule.

    ``"append"``: ``/about`` becomes ``/about/``, unless the last segment has a dot
    (``/robots.txt``, ``/feed.xml``: files). ``"strip"``: ``/about/`` becomes ``/about``;
    the root ``/`` stays. ``"keep"``: unchanged. Only paths are changed: a value that does
    not start with ``/`` (empty, a full URL, or the URL cap's ``"(other URLs)"``) is
    returned as it is. Idempotent, and the same string when nothing changes (no allocation): it
    runs on every tracked request.
    """
    if not path.startswith("/"):
        return path
    mode = trailing_slash_mode()
    if mode == APPEND:
        if path.endswith("/") or path.find(".", path.rfind("/")) != -1:
            return path
        return path + "/"
    if mode == STRIP and path.endswith("/") and path != "/":
        return path.rstrip("/") or "/"
    return path


def normalize_url(url: str) -> str:
    """``url`` with only its path (the part before ``?``) normalised: the query string the
    site keeps (``PAGEVIEW_TRACK_QUERY_STRING``) stays after it, as when tracked."""
    cut = url.find("?")
    if cut == -1:
        return normalize_path(url)
    return normalize_path(url[:cut]) + url[cut:]


@receiver(setting_changed)
def _clear_mode(*, setting: str, **kwargs: object) -> None:
    if setting in ("PAGEVIEW_TRAILING_SLASH", "APPEND_SLASH"):
        trailing_slash_mode.cache_clear()
