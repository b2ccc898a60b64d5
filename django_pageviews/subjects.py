"""What a stats request asks about (a URL, an object or a view name), and its counts.

The stats API and the public counter name their subject the same way and read it through
the package's read API only (queries, reports, series), so that their numbers are the
numbers ``PageView.get_view_count`` and the template tags show: live, pending included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Model

from . import queries, reports, series
from .events import stored_url
from .objects import model_label
from .paths import normalize_url

URL = "url"
OBJECT = "object"
VIEW = "view"


@dataclass(frozen=True)
class Subject:
    """One URL, one object or one view name. ``url`` is kept as stored (normalised)."""

    kind: str
    url: str = ""
    obj: Model | None = None
    view_name: str = ""

    @classmethod
    def for_url(cls, url: str) -> Subject:
        return cls(URL, url=stored_url(normalize_url(url)))

    @classmethod
    def for_object(cls, obj: Model) -> Subject:
        return cls(OBJECT, obj=obj)

    def describe(self) -> dict[str, Any]:
        """The subject as the JSON answers name it."""
        if self.obj is not None:
            return {"model": model_label(type(self.obj)), "pk": str(self.obj.pk)}
        if self.kind == URL:
            return {"url": self.url}
        return {"view": self.view_name}

    def total(self, since: date | None = None, days: int | None = None) -> int:
        """All-time views, or those since a day (inclusive) or of the last ``days`` days."""
        if since is None and days is None:
            if self.obj is not None:
                return queries.get_view_count(obj=self.obj)
            if self.kind == URL:
                return queries.get_view_count(url=self.url)
            return queries.get_view_count(view_name=self.view_name)
        if self.obj is not None:
            return reports.get_views_by_period(self.obj, days=days, start_date=since)
        if self.kind == URL:
            return series.get_url_views_by_period(self.url, days=days, start_date=since)
        return series.get_view_name_views_by_period(self.view_name, days=days, start_date=since)

    def daily(self, days: int) -> dict[date, int]:
        """``{day: views}`` of the last ``days`` days, oldest first, zeros included."""
        if self.obj is not None:
            return reports.get_daily_views(self.obj, days=days)
        if self.kind == URL:
            return series.get_url_daily_views(self.url, days=days)
        return series.get_view_name_daily_views(self.view_name, days=days)
