"""Which counts are public: ``PAGEVIEW_PUBLIC_COUNTERS``, nothing by default.

Each entry is either a URL path pattern (it starts with ``/``; ``*`` matches any run of
characters, ``/`` included: ``/blog/*``) or a model label (``blog.article``: every object
of that model). A subject matches none of them: its counter answers 404, exactly as for
a page or object that does not exist, so that nobody can tell the two apart.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.apps import apps

from django_pageviews.conf import conf
from django_pageviews.objects import model_label
from django_pageviews.params import SubjectName
from django_pageviews.paths import normalize_path


def _entries() -> list[str]:
    # Wrong values are reported by the system check (E038), and count for nothing here.
    value = conf.PUBLIC_COUNTERS
    if not isinstance(value, list | tuple):
        return []
    return [entry for entry in value if isinstance(entry, str) and entry]


def _public_models() -> set[str]:
    labels = set()
    for entry in _entries():
        if not entry.startswith("/"):
            try:
                labels.add(model_label(apps.get_model(entry)))
            except (LookupError, ValueError):
                continue
    return labels


def is_public(name: SubjectName) -> bool:
    """Whether the counter of ``name`` may be shown to anyone."""
    if name.model is not None:
        return model_label(name.model) in _public_models()
    if not name.url:
        return False  # a view name: no public counter
    return any(fnmatchcase(name.url, pattern) for pattern in _url_patterns())


def _url_patterns() -> list[str]:
    """The path patterns, under the trailing-slash rule URLs are stored by (paths.py), so
    that ``/about`` opts in the ``/about/`` that a site appending slashes stores. A pattern
    ending in ``*`` already matches either way, and would match less with a slash added."""
    return [
        pattern if pattern.endswith("*") else normalize_path(pattern)
        for pattern in _entries()
        if pattern.startswith("/")
    ]
