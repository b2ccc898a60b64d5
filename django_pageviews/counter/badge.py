"""The counter as an SVG badge, "views | 1.2K", in the flat style of shields.io.

No request text reaches the markup: the label is fixed (or says since which validated
date), the value is a formatted integer, and both are escaped all the same. The image
names itself for assistive technology (``role="img"``, ``aria-label`` and ``<title>``,
with the exact number), and its text is white on its own dark fills, so it reads the
same on light and dark pages.
"""

from __future__ import annotations

from datetime import date

from django.utils.html import escape

from django_pageviews.numbers import format_number

HEIGHT = 20
PADDING = 6  # on each side of a text
LABEL_FILL = "#555"
VALUE_FILL = "#007ec6"
# Advance widths of Verdana 11px, in pixels, of the characters a badge can show; others
# (none today) take the widest digit's.
WIDTHS = {
    **dict.fromkeys("0123456789", 7.0),
    "K": 7.6, "M": 8.6, "B": 7.5, "T": 6.8, ".": 3.5, ",": 3.6, "-": 4.6, " ": 3.9,
    "v": 6.5, "i": 3.1, "e": 6.6, "w": 9.0, "s": 5.7, "n": 7.0, "c": 5.7,
}  # fmt: skip
DEFAULT_WIDTH = 7.0


def text_width(text: str) -> int:
    return round(sum(WIDTHS.get(c, DEFAULT_WIDTH) for c in text)) + 2 * PADDING


def label_for(since: date | None) -> str:
    return "views" if since is None else f"views since {since.isoformat()}"


def title_for(views: int, since: date | None) -> str:
    """The exact count, for screen readers and tooltips: "1,234 views"."""
    suffix = "" if since is None else f" since {since.isoformat()}"
    return f"{views:,} {'view' if views == 1 else 'views'}{suffix}"


def badge(views: int, since: date | None = None) -> str:
    label, value = label_for(since), str(format_number(views))
    title = escape(title_for(views, since))
    left, right = text_width(label), text_width(value)
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/>'
        "</clipPath>"
        f'<g clip-path="url(#r)"><rect width="{left}" height="{HEIGHT}" fill="{LABEL_FILL}"/>'
        f'<rect x="{left}" width="{right}" height="{HEIGHT}" fill="{VALUE_FILL}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:g}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2:g}" y="14">{escape(value)}</text></g></svg>'
    )
