"""Flatten: what the operator is told before confirming one (the engine's preview, :meth:`Engine.flatten`).

A flatten's closing orders go through the pre-trade gate as orders that only reduce a position, in every trading
state; a data outage does not stop them (:mod:`~tui_trader.risk.checks`), so the preview says when a quote is old.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tui_trader.domain import CheckResult, MarketSnapshot
from tui_trader.risk.market_checks import check_quote_age


def quote_warnings(symbols: Iterable[str], market: MarketSnapshot, now: datetime, max_age_s: float) -> tuple[str, ...]:
    """What makes the estimate of each symbol's closing order unreliable: no quote, or one the gate's quote-age
    check fails (older than ``max_age_s``, a data outage; or stamped in the future, its age unknown). Such an
    order is not stopped by it (a market exit goes without a fresh quote: :mod:`~tui_trader.risk.checks`); the
    operator is told before confirming."""
    out = []
    for symbol in symbols:
        quote = market.quotes.get(symbol)
        if quote is None:
            out.append(f"{symbol}: no quote: no estimate of the fill")
        elif not (age := check_quote_age(quote, now, max_age_s)).passed:
            out.append(f"{symbol}: {_age_words(age)}: the estimate may be stale")
    return tuple(out)


def _age_words(age: CheckResult) -> str:
    """The quote's age as the failed check found it: so many seconds old, or the check's words for why its age
    is unknown (a time in the future)."""
    return f"quote {age.value:.0f} s old" if age.value is not None and age.value >= 0 else age.message
