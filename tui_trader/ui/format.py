"""Pure text formatting for the console: money, quantities, ages, sparklines.

Nothing here imports Textual; every function returns plain strings so the panes can cache
the strips they build from them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from functools import lru_cache, partial
from zoneinfo import ZoneInfo

SPARK_CHARS = "▁▂▃▄▅▆▇█"
DASH = "—"
FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?")
"""One unsigned figure as these functions write it: ``1,234.5``, ``178.58``, ``12``."""


def is_num(value: float | None) -> bool:
    """True for a real, finite number."""
    return value is not None and math.isfinite(value)


def money(value: float | None, *, signed: bool = False, decimals: int = 2) -> str:
    """``1,234.50`` (``+1,234.50`` when ``signed``); a dash for unknown values. A figure that rounds to
    zero is drawn without a minus: a short at its cost (``-100 * 0.0`` is ``-0.0``) or float noise of an
    average cost read ``-0.00``, a loss."""
    if not is_num(value):
        return DASH
    assert value is not None
    value = unsigned_zero(value, decimals)
    return f"{value:+,.{decimals}f}" if signed else f"{value:,.{decimals}f}"


def unsigned_zero(value: float, decimals: int = 2) -> float:
    """``value``, or ``0.0`` when it rounds to zero at ``decimals``: a figure that shows no digit has no sign."""
    return 0.0 if round(value, decimals) == 0 else value


def shown_sign(value: float, decimals: int = 2) -> int:
    """The sign of ``value`` as drawn at ``decimals`` (1, -1, or 0 for a figure that reads zero): what a
    gain or loss colour follows, so ``+0.00`` is never drawn in the loss colour."""
    shown = round(value, decimals)
    return (shown > 0) - (shown < 0)


def price(value: float | None) -> str:
    """A price with two decimals, or four below one unit."""
    if not is_num(value) or value is None or value <= 0:
        return DASH
    return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"


def spread(value: float | None, reference: float | None) -> str:
    """A price difference with the decimals :func:`price` gives ``reference``: ``0.02``; ``0.0016``
    for a stock under one unit, whose spread read ``0.00`` at two decimals; a dash when unknown."""
    if not is_num(value) or value is None:
        return DASH
    return f"{value:,.4f}" if is_num(reference) and abs(reference or 0) < 1 else f"{value:,.2f}"


def trailing_stop(start: float, sells: bool) -> str:
    """A trailing stop as ``≥ start`` when it sells (it protects a long), ``≤ start`` when it buys: the broker
    moves it only the one way, in the position's favour, and does not tell the client where it is now."""
    return ("≥" if sells else "≤") + price(start)


QTY_DECIMALS = 8
"""Decimals a quantity keeps (fractional shares, crypto): beyond them only float noise is left."""


def qty(value: float | None) -> str:
    """A quantity as it is, without needless decimals: ``1,234``, ``1,234.5``, ``12,345.125``.

    Never rounded to a few significant digits or put in scientific notation: a position of
    1,234.5 read "1,234", and one of 12,345.5 read "1.235e+04".
    """
    if not is_num(value):
        return DASH
    assert value is not None
    if float(value).is_integer():
        return f"{value:,.0f}"
    text = f"{value:,.{QTY_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def plain(value: float) -> str:
    """A figure as an operator types it: exact (it parses back to ``value``), no thousands separator,
    no trailing ``.0``: ``12345.67``, ``1234.5``, ``200``. Prefills a field without rounding it."""
    text = repr(float(value))
    return text.removesuffix(".0")


def pct(value: float | None, *, signed: bool = True) -> str:
    """A percentage with two decimals, ``+2.50%`` when ``signed``. One that rounds to zero reads ``0.00%``: a
    plus beside a small loss ("Day -2.38 +0.00%") read as a gain."""
    if not is_num(value):
        return DASH
    assert value is not None
    value = unsigned_zero(value)
    return f"{value:+.2f}%" if signed and value else f"{value:.2f}%"


def compact(value: float | None, decimals: int = 2) -> str:
    """``0.63``, ``12.30k``, ``4.50M``: a short money figure for narrow gauges (cents below 1,000);
    ``decimals`` of the unit (``12.3k``, ``12k``)."""
    if not is_num(value):
        return DASH
    assert value is not None
    cents = round(float(value), 2)
    if abs(cents) < 1000:  # a loss of 0.63 is not "1"; whole figures without cents; no "-0"
        return f"{int(cents):,}" if cents.is_integer() else f"{cents:,.2f}"
    # The smallest unit whose figure, as printed, stays under 1,000: 999,998.50 is 1.00M, not 1,000.00k.
    for size, suffix in ((1e3, "k"), (1e6, "M")):
        if abs(round(value / size, decimals)) < 1000:
            return f"{value / size:,.{decimals}f}{suffix}"
    return f"{value / 1e9:,.{decimals}f}B"


def age(seconds: float | None) -> str:
    """A short age: ``0.4s``, ``12s``, ``3m05s``, ``2h10m``; a dash when unknown."""
    if seconds is None or not is_num(seconds):
        return DASH
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def age_between(now: datetime, then: datetime | None) -> float | None:
    """Seconds from ``then`` to ``now``, or ``None`` when ``then`` is unknown."""
    return None if then is None else (now - then).total_seconds()


def hhmmss(when: datetime | None, zone: str = "") -> str:
    """``14:03:07`` in ``zone`` (the exchange's time zone) or a dash."""
    if when is None:
        return DASH
    if zone:
        when = when.astimezone(_zone(zone))
    return when.strftime("%H:%M:%S")


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return UTC


def sparkline(values: Iterable[float], width: int) -> str:
    """The last ``width`` values as block characters, scaled to their own range."""
    points = [v for v in list(values)[-width:] if is_num(v)]
    if not points:
        return " " * width
    low, high = min(points), max(points)
    span = high - low
    top = len(SPARK_CHARS) - 1
    chars = [SPARK_CHARS[round((v - low) / span * top) if span else top // 2] for v in points]
    return "".join(chars).rjust(width)


def gauge(fraction: float | None, width: int) -> str:
    """A bar of ``width`` cells filled to ``fraction`` (clamped to 0..1)."""
    if fraction is None or not is_num(fraction):
        return "·" * width
    filled = round(min(max(fraction, 0.0), 1.0) * width)
    return "█" * filled + "░" * (width - filled)


def fit(text: str, width: int, *, right: bool = False) -> str:
    """Pad or truncate ``text`` to exactly ``width`` cells (an ellipsis marks a cut)."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:width]
    return text.rjust(width) if right else text.ljust(width)


def fit_figures(text: str, width: int) -> str:
    """``text`` (a quantity, a price, money: figures with signs and marks) right-aligned in ``width`` cells,
    never with a digit cut off: a cut figure reads as another number ("1,234.5" as "1,234…", "234.5").

    Too wide, it is written shorter: first without thousands separators, losing nothing
    (``-1234567.89``); then with each figure of 1,000 or more in :func:`compact` form, with two
    decimals of its unit, one, none (``-1.23M``, ``-123.5k``, ``-123k``: rounded, and saying so);
    else the cell is filled with ``#``, a spreadsheet's "does not fit".
    """
    if len(text) <= width:
        return text.rjust(width)
    bare = text.replace(",", "")
    if len(bare) <= width:
        return bare.rjust(width)
    compacted = (FIGURE.sub(partial(_compact_figure, decimals), bare) for decimals in (2, 1, 0))  # while too wide
    return next((t.rjust(width) for t in compacted if len(t) <= width), "#" * width)


def asked(held: str, new: str, width: int) -> str:
    """``held→new`` (a figure the broker holds, and the one asked of it) when it fits ``width``, else
    ``held→…``, else ``held`` alone (the status says MODIFYING); ``held`` when the two are the same. Each
    is measured as :func:`fit_figures` draws it: without thousands separators when too wide with them."""
    if held == new:
        return held
    for text in (f"{held}→{new}", f"{held}→…"):
        text = text if len(text) <= width else text.replace(",", "")
        if len(text) <= width:
            return text
    return held


def _compact_figure(decimals: int, match: re.Match[str]) -> str:
    value = float(match.group())
    return compact(value, decimals) if value >= 1000 else match.group()
