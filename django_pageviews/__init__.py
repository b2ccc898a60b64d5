"""Exact page-view counting for Django that costs the request path almost nothing.

The public functions, importable from the package itself (``from django_pageviews import
record_view, flush``): they are loaded on first use, because this package is imported
before Django's app registry is ready and they need the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "1.0.0.dev0"
__all__ = ["flush", "record_view"]

if TYPE_CHECKING:
    from .flushing import flush
    from .manual import record_view

_PUBLIC = {"record_view": "manual", "flush": "flushing"}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
