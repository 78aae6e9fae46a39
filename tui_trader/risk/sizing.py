"""Position sizing: how a signal becomes a quantity, never above what the limits allow.

The sizer computes the quantity its rule asks for, then the headroom every size-related limit
leaves (order quantity and notional, position quantity and notional, gross exposure, leverage,
cash), takes the smallest, and rounds down to the instrument's size increment. It returns 0 with
a reason when nothing fits, instead of producing an order the gate will deny.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from tui_trader.domain import AccountSnapshot, Instrument, MarketSnapshot, Order, OrderTicket, Side, TradingState
from tui_trader.risk.checks import ORDER_NOTIONAL, TicketContext, pre_trade_check
from tui_trader.risk.limits import RiskLimits
from tui_trader.risk.throttle import Throttle

SIZE_CHECKS = frozenset({"order_quantity", ORDER_NOTIONAL, "position_quantity", "position_notional",
                         "gross_exposure", "leverage", "cash_fraction"})  # fmt: skip
"""The pre-trade checks whose headroom bounds the size."""


class SizingMethod(StrEnum):
    """How the quantity is chosen (names as in the config's ``[sizing]`` section)."""

    FIXED_QUANTITY = "fixed_quantity"
    FIXED_NOTIONAL = "fixed_notional"
    EQUITY_PCT = "equity_pct"
    RISK_PER_TRADE = "risk_per_trade"


@dataclass(frozen=True, slots=True)
class SizingRule:
    """A sizing method and its parameters.

    ``risk_money`` (if set) or ``risk_pct`` of equity is what a stop-out may lose; the stop distance
    is the explicit stop, else ``atr_mult`` x ATR when an ATR is given, else ``stop_pct`` of the price.
    """

    method: SizingMethod = SizingMethod.FIXED_NOTIONAL
    quantity: float = 10.0
    notional: float = 5_000.0
    equity_pct: float = 5.0
    risk_money: float | None = None
    risk_pct: float = 0.5
    atr_mult: float = 2.0
    stop_pct: float | None = 1.0


@dataclass(frozen=True, slots=True)
class SizeResult:
    """The sized quantity (0 when nothing fits) and why."""

    quantity: float
    reason: str
    requested: float
    capped_by: str | None = None
    headroom: float = math.inf

    @property
    def ok(self) -> bool:
        """True when a positive quantity fits."""
        return self.quantity > 0


def requested_quantity(
    rule: SizingRule, price: float, equity: float, stop_price: float | None = None, atr: float | None = None
) -> tuple[float, str]:
    """The quantity the rule asks for before limits, and a note on how it was derived."""
    if not price > 0:
        return 0.0, "no price to size at"
    method = SizingMethod(rule.method)
    if method is SizingMethod.FIXED_QUANTITY:
        return rule.quantity, f"fixed {rule.quantity:g}"
    if method is SizingMethod.FIXED_NOTIONAL:
        return rule.notional / price, f"{rule.notional:,.0f} notional"
    if method is SizingMethod.EQUITY_PCT:
        return equity * rule.equity_pct / 100 / price, f"{rule.equity_pct:g}% of equity"
    return _risk_quantity(rule, price, equity, stop_price, atr)


def _risk_quantity(
    rule: SizingRule, price: float, equity: float, stop_price: float | None, atr: float | None
) -> tuple[float, str]:
    at_risk = rule.risk_money if rule.risk_money is not None else equity * rule.risk_pct / 100
    if stop_price is not None and stop_price > 0:
        distance, how = abs(price - stop_price), "stop"
    elif atr is not None and atr > 0:
        distance, how = atr * rule.atr_mult, f"{rule.atr_mult:g} ATR"
    elif rule.stop_pct:
        distance, how = price * rule.stop_pct / 100, f"{rule.stop_pct:g}% stop"
    else:
        return 0.0, "no stop distance to size the risk"
    if not distance > 0:
        return 0.0, "stop distance is zero"
    return at_risk / distance, f"{at_risk:,.0f} at risk over {distance:.4g} ({how})"


def quantity_headroom(ctx: TicketContext) -> list[tuple[str, float]]:
    """For each enabled size limit, the largest quantity of the ticket's side it still allows."""
    lim, ticket, book, leg = ctx.limits, ctx.ticket, ctx.book, ctx.leg
    buy = ticket.side is Side.BUY
    mark = book.price(ticket.symbol)
    mark = mark if mark > 0 else ctx.price
    edge = leg.worst_long if buy else -leg.worst_short  # how far the ticket's direction already reaches
    out: list[tuple[str, float]] = []
    if lim.max_order_quantity is not None:
        out.append(("order_quantity", lim.max_order_quantity))
    if lim.max_order_notional is not None:
        out.append((ORDER_NOTIONAL, lim.max_order_notional / ctx.price))
    if lim.max_position_quantity is not None:
        out.append(("position_quantity", lim.max_position_quantity - edge))
    if lim.max_position_notional is not None:
        out.append(("position_notional", lim.max_position_notional / mark - edge))
    out += _exposure_headroom(ctx, mark, edge)
    return out


def _exposure_headroom(ctx: TicketContext, mark: float, edge: float) -> list[tuple[str, float]]:
    lim, equity = ctx.limits, ctx.account.equity
    other = ctx.book.gross() - ctx.leg.worst_abs * mark
    out: list[tuple[str, float]] = []
    for name, cap in (("gross_exposure", lim.max_gross_exposure), ("leverage", lim.max_leverage)):
        if cap is not None:
            out.append((name, (cap * equity - other) / mark - edge if equity > 0 else 0.0))
    if lim.min_cash_fraction is not None and ctx.ticket.side is Side.BUY:
        free = ctx.account.cash - ctx.book.buy_commitment() - lim.min_cash_fraction * equity
        out.append(("cash_fraction", free / ctx.price))
    return out


def round_down(quantity: float, increment: float) -> float:
    """``quantity`` rounded down to a multiple of ``increment`` (exact in decimal)."""
    if not quantity > 0 or not math.isfinite(quantity):
        return 0.0
    step = Decimal(str(increment))
    units = (Decimal(repr(quantity)) / step).to_integral_value(rounding=ROUND_FLOOR)
    return float(units * step)


def size_order(
    rule: SizingRule,
    ticket: OrderTicket,
    account: AccountSnapshot,
    market: MarketSnapshot,
    limits: RiskLimits,
    now: datetime,
    in_flight: Sequence[Order] = (),
    *,
    stop_price: float | None = None,
    atr: float | None = None,
) -> SizeResult:
    """Size ``ticket`` (its quantity is ignored) by ``rule``, capped by the limits' headroom.

    Args:
        rule: The sizing method and parameters.
        ticket: Symbol, side, order type and prices of the order to size.
        account: Equity, cash, positions and working orders.
        market: Quotes and the instrument (for its size increment).
        limits: The limits whose headroom caps the size.
        now: The clock.
        in_flight: Orders sent that the account snapshot may not show yet.
        stop_price: The protective stop, for risk-per-trade sizing.
        atr: The average true range, for ATR-based risk-per-trade sizing.
    """
    probe = TicketContext(_with_quantity(ticket, 0.0), account, market, limits, now, in_flight)
    wanted, how = requested_quantity(rule, probe.price, account.equity, stop_price, atr)
    caps = quantity_headroom(probe)
    name, cap = min(caps, key=lambda c: c[1], default=(None, math.inf))
    raw = min(wanted, cap)
    quantity = round_down(raw, _increment(market, ticket.symbol))
    if quantity <= 0:
        why = how if wanted <= 0 or name is None or wanted <= cap else f"no headroom left under {name}"
        return SizeResult(0.0, why, wanted, name, cap)
    capped = name if cap < wanted else None
    note = how if capped is None else f"{how}; capped by {capped}"
    return _verified(SizeResult(quantity, note, wanted, capped, cap), ticket, account, market, limits, now, in_flight)


def _verified(
    result: SizeResult, ticket: OrderTicket, account: AccountSnapshot, market: MarketSnapshot,
    limits: RiskLimits, now: datetime, in_flight: Sequence[Order],
) -> SizeResult:  # fmt: skip
    """Run the size checks on the sized ticket: a size the gate would deny becomes 0."""
    sized = _with_quantity(ticket, result.quantity)
    verdict = pre_trade_check(sized, account, market, limits, now, Throttle(), TradingState.ACTIVE, in_flight)
    failed = [c for c in verdict.failures if c.name in SIZE_CHECKS]
    if not failed:
        return result
    return SizeResult(0.0, f"sized order would fail {failed[0].name}", result.requested, failed[0].name)


def _with_quantity(ticket: OrderTicket, quantity: float) -> OrderTicket:
    return replace(ticket, quantity=quantity)


def _increment(market: MarketSnapshot, symbol: str) -> float:
    instrument = market.instruments.get(symbol) or Instrument(symbol)
    return instrument.size_increment if instrument.size_increment > 0 else 1.0
