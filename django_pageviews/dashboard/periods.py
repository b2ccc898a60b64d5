"""The periods the dashboard shows, and the form that asks for a custom one.

Periods are whole days in the site's time zone, as the daily totals are (reports.py):
"7 days" is today and the six days before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django import forms

from django_pageviews.events import current_day
from django_pageviews.params import MAX_DAYS

DEFAULT_DAYS = 30  # the chart's and the lists' period without a custom range


@dataclass(frozen=True)
class Period:
    label: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


def last_days(days: int, label: str, today: date | None = None) -> Period:
    today = current_day() if today is None else today
    return Period(label, today - timedelta(days=days - 1), today)


def standard_periods(today: date) -> list[Period]:
    return [
        last_days(1, "Today", today),
        last_days(7, "Last 7 days", today),
        last_days(30, "Last 30 days", today),
    ]


class RangeForm(forms.Form):
    """A custom range of days, both ends included, at most a year (as the stats API)."""

    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if isinstance(start, date) and isinstance(end, date):
            if start > end:
                raise forms.ValidationError("The range must start on or before its last day.")
            if end > current_day():
                raise forms.ValidationError("The range cannot end after today.")
            if (end - start).days + 1 > MAX_DAYS:
                raise forms.ValidationError(f"The range can span at most {MAX_DAYS} days.")
        return cleaned

    def period(self) -> Period:
        """The valid range as a Period (call after ``is_valid()``)."""
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        return Period(f"{start.isoformat()} to {end.isoformat()}", start, end)
