"""Server-rendered SVG charts: no script, no CDN, nothing to load, works offline.

Colours come from the admin's CSS variables (``--primary``, ``--hairline-color``,
``--body-quiet-color``), set by class in the dashboard's stylesheet, so the charts follow
the admin's light and dark themes. Each chart is an ``<svg role="img">`` with a
``<title>``; each bar has its own ``<title>`` (a tooltip: day and views), and the template
shows the same figures in a table for screen readers, text browsers and copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 220
LEFT = 56  # room for the axis labels
BOTTOM = 24
TOP = 10
GAP = 0.15  # of each bar's slot, left empty between bars


def _num(value: float) -> str:
    """A coordinate to two decimals (format_html formats its arguments as text)."""
    return f"{value:.2f}"


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at or above ``value``: a round top for the axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def daily_bars(series: Sequence[tuple[date, int]], title: str) -> SafeString:
    """A bar per day (zeros included, drawn as no bar), with a y axis from 0 to a round
    maximum and the first, middle and last days under the x axis."""
    top = _nice_ceiling(max((n for _, n in series), default=0) or 1)
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(series), 1)
    parts = [
        format_html(
            '<svg class="pv-chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}" '
            'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
            '<title id="{}">{}</title>',
            WIDTH,
            HEIGHT,
            "pv-chart-title",
            "pv-chart-title",
            title,
        ),
        format_html(
            '<line class="pv-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
            '<line class="pv-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
            '<text class="pv-label" x="{}" y="{}" text-anchor="end">{}</text>'
            '<text class="pv-label" x="{}" y="{}" text-anchor="end">0</text>',
            LEFT,
            TOP + plot_h,
            WIDTH,
            TOP + plot_h,
            LEFT,
            TOP,
            WIDTH,
            TOP,
            LEFT - 6,
            TOP + 4,
            f"{top:,}",
            LEFT - 6,
            TOP + plot_h,
        ),
    ]
    for i, (day, n) in enumerate(series):
        height = plot_h * n / top
        parts.append(
            format_html(
                '<rect class="pv-bar" x="{}" y="{}" width="{}" height="{}" '
                'data-day="{}" data-views="{}"><title>{}: {} views</title></rect>',
                _num(LEFT + i * slot + slot * GAP / 2),
                _num(TOP + plot_h - height),
                _num(slot * (1 - GAP)),
                _num(height),
                day.isoformat(),
                n,
                day.isoformat(),
                n,
            )
        )
    if series:
        last = len(series) - 1
        for i in sorted({0, len(series) // 2, last}):
            # Centred under its bar; the last one ends at the chart's edge, not past it.
            anchor, x = (
                ("end", LEFT + (i + 1) * slot) if i == last else ("middle", LEFT + (i + 0.5) * slot)
            )
            parts.append(
                format_html(
                    '<text class="pv-label" x="{}" y="{}" text-anchor="{}">{}</text>',
                    _num(x),
                    HEIGHT - 6,
                    anchor,
                    series[i][0].isoformat(),
                )
            )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))
