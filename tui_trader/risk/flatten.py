"""Flatten: what the operator is told before confirming one (the engine's preview, :meth:`Engine.flatten`).

A flatten's closing orders go through the pre-trade gate as orders that only reduce a position, in every trading
state; a data outage does not stop them (:mod:`~tui_trader.risk.checks`), so the preview says when a quote is old.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tui_trader.domain import MarketSnapshot


def quote_warnings(symbols: Iterable[str], market: MarketSnapshot, now: datetime, max_age_s: float) -> tuple[str, ...]:
    """What makes the estimate of each symbol's closing order unreliable: no quote, or one older than
    ``max_age_s`` (a data outage). Such an order is not stopped by it (a market exit goes without a fresh
    quote: :mod:`~tui_trader.risk.checks`); the operator is told before confirming."""
    out = []
    for symbol in symbols:
        quote = market.quotes.get(symbol)
        if quote is None:
            out.append(f"{symbol}: no quote: no estimate of the fill")
        elif (age := (now - quote.time).total_seconds()) > max_age_s:
            out.append(f"{symbol}: quote {age:.0f} s old: the estimate may be stale")
    return tuple(out)
