"""View counts written short: 1120 as "1.1K", 2500000 as "2.5M".

The ``format_number`` filters of ``pageview_tags``, kept apart from the tags that read
counts: pure functions of their arguments, which never raise (Django's rule for filters).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

# Suffixes from the smallest up: a value that rounds up to 1000 of one unit (999,999 at
# precision 1) is written with the next one ("1M", not "1000K").
UNITS = ((10**3, "K"), (10**6, "M"), (10**9, "B"), (10**12, "T"))
DEFAULT_PRECISION = 1
DEFAULT_MIN_THRESHOLD = 1000
# More decimals than this mean nothing on a view count; the bound keeps Decimal in range.
MAX_PRECISION = 10


def _as_decimal(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal (exact, unlike float: 1250 at precision 1 is 1.3K), or
    None when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | Decimal):
            number = Decimal(value)
        elif isinstance(value, float | str):
            number = Decimal(str(value).strip())
        else:
            return None
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _precision(value: Any, default: int) -> int:
    try:
        precision = int(value)
    except (TypeError, ValueError):
        return default
    return precision if 0 <= precision <= MAX_PRECISION else default


def _abbreviate(value: Any, precision: int, min_threshold: Decimal, lower: bool) -> Any:
    """``value`` with a K/M/B/T suffix, or ``value`` itself when it is not a number or its
    size is below ``min_threshold`` (or below 1000, which has no suffix)."""
    number = _as_decimal(value)
    if number is None:
        return value
    size = abs(number)
    if size < min_threshold or size < UNITS[0][0]:
        return value
    step = Decimal(1).scaleb(-precision)
    with localcontext() as exact:  # enough digits that quantize() never runs out
        exact.prec = max(exact.prec, size.adjusted() + MAX_PRECISION + 2)
        for unit, suffix in UNITS:
            scaled = (size / unit).quantize(step, rounding=ROUND_HALF_UP)
            if scaled < 1000 or suffix == UNITS[-1][1]:
                break
    text = format(scaled, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    sign = "-" if number < 0 else ""
    return f"{sign}{text}{suffix.lower() if lower else suffix}"


def format_number(value: Any, precision: Any = DEFAULT_PRECISION) -> Any:
    """``1120|format_number`` is "1.1K", ``1234|format_number:2`` "1.23K"; numbers below
    1000 and non-numbers come back unchanged."""
    return _abbreviate(
        value, _precision(precision, DEFAULT_PRECISION), Decimal(DEFAULT_MIN_THRESHOLD), False
    )


def format_number_with_options(value: Any, options: Any = "") -> Any:
    """``format_number`` configured by a string such as
    ``"precision:2,min_threshold:10000,suffix_style:lower"``.

    Each option is read on its own: an unknown key or a bad value leaves that option at its
    default (precision 1, min_threshold 1000, suffix_style upper) and the others apply.
    """
    precision = DEFAULT_PRECISION
    min_threshold = Decimal(DEFAULT_MIN_THRESHOLD)
    lower = False
    for item in options.split(",") if isinstance(options, str) else ():
        key, _, raw = item.partition(":")
        key, raw = key.strip().lower(), raw.strip()
        if key == "precision":
            precision = _precision(raw, precision)
        elif key == "min_threshold":
            threshold = _as_decimal(raw)
            min_threshold = threshold if threshold is not None else min_threshold
        elif key == "suffix_style" and raw.lower() in ("upper", "lower"):
            lower = raw.lower() == "lower"
    return _abbreviate(value, precision, min_threshold, lower)
