"""Exact page-view counting for Django that costs the request path almost nothing."""

from __future__ import annotations

__version__ = "1.0.0.dev0"
