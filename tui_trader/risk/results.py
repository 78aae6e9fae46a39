"""Building blocks of check results: bounds, and the passing results built once and shared.

A :class:`CheckResult` is an immutable value, so the passing results of checks without numbers
are module constants: the gate runs some 25 checks per order inside a 50 µs budget.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tui_trader.domain import CheckResult, TradingState
from tui_trader.domain.verdicts import figure

EXEMPT_MESSAGE = "reduces a position: exempt"


def const(name: str, message: str = "") -> CheckResult:
    """A passing result without numbers."""
    return CheckResult(name, True, message=message)


# Results without numbers are immutable values: the passing ones are built once, not per order.
PASS = {n: const(n) for n in ("ticket_valid", "symbol_allowed", "order_type_allowed", "quote", "trading_hours",
                              "bracket", "reduce_only")}
EXEMPTS = {
    n: const(n, EXEMPT_MESSAGE)
    for n in ("symbol_allowed", "cash_fraction", "trading_hours", "close_window", "open_window", "cooldown",
              "daily_trades", "daily_trades_strategy")
}  # fmt: skip
NO_DUPLICATE = CheckResult("duplicate", True, 0, 0, 0, "", "orders")
STATE_PASS = {s: const("trading_state", s.value) for s in (TradingState.ACTIVE, TradingState.REDUCING)}


def upper_bound(name: str, value: float, limit: float, unit: str = "") -> CheckResult:
    """A plain ``value <= limit`` check (NaN values fail: unknown means deny)."""
    passed = value <= limit
    message = "" if passed else _over(value, limit, unit)
    return CheckResult(name, passed, value, limit, limit - value, message, unit)


def _over(value: float, limit: float, unit: str) -> str:
    if math.isnan(value):
        return "cannot be measured (price or equity unknown)"
    return f"{figure(value, unit)} over the limit of {figure(limit, unit)}"


def growth_bound(name: str, before: float, after: float, limit: float, unit: str = "") -> CheckResult:
    """``after <= limit``, except that an order which does not grow the measure always passes."""
    if after <= limit or after <= before:
        return CheckResult(name, True, after, limit, limit - after, "", unit)
    return upper_bound(name, after, limit, unit)


def exempt(name: str) -> CheckResult:
    """A passing result for a check a reducing order is exempt from."""
    return EXEMPTS.get(name) or const(name, EXEMPT_MESSAGE)


def exempted(result: CheckResult) -> CheckResult:
    """``result``, failed, passed for an order that only reduces a position, its figures and why it failed kept:
    the trace and the approval still show how old (or how wide) the quote was."""
    why = result.message or "over the limit"
    return replace(result, passed=True, message=f"{why}; {EXEMPT_MESSAGE}")
