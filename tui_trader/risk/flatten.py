"""Flatten: a separate, previewed decision to close positions with market orders.

The preview lists the closing tickets with the price each is expected to fill at (the bid for a
sell, the ask for a buy; else last, else the position's mark), so the operator confirms what
will happen. Flatten tickets go through :func:`check_flatten_ticket`, which holds in every trading
state (including HALTED, where the normal gate denies everything): the ticket must be reduce-only
and, with the other working orders on its side, never take the position past flat.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tui_trader.domain import (
    AccountSnapshot,
    CheckResult,
    MarketSnapshot,
    Order,
    OrderTicket,
    OrderType,
    Position,
    RiskVerdict,
    Side,
    TradingState,
)
from tui_trader.risk.book import build_book

FLATTEN_STRATEGY = "flatten"


@dataclass(frozen=True, slots=True)
class FlattenLine:
    """One closing order of a flatten, with its estimate."""

    ticket: OrderTicket
    position: float
    estimated_price: float
    price_source: str
    estimated_notional: float
    estimated_pnl: float


@dataclass(frozen=True, slots=True)
class FlattenPreview:
    """What a flatten would send; nothing is sent until the operator confirms it."""

    created_at: datetime
    lines: tuple[FlattenLine, ...]
    cancel_first: tuple[str, ...]
    warnings: tuple[str, ...]
    trading_state: TradingState

    @property
    def tickets(self) -> tuple[OrderTicket, ...]:
        """The closing tickets, in symbol order."""
        return tuple(line.ticket for line in self.lines)

    @property
    def estimated_notional(self) -> float:
        """Total value traded (NaN when any price is unknown)."""
        return sum(line.estimated_notional for line in self.lines)

    @property
    def estimated_pnl(self) -> float:
        """P&L realised by the flatten at the estimated prices."""
        return sum(line.estimated_pnl for line in self.lines)


def flatten_preview(
    account: AccountSnapshot,
    market: MarketSnapshot,
    now: datetime,
    symbols: Iterable[str] | None = None,
    current: TradingState = TradingState.HALTED,
) -> FlattenPreview:
    """The closing orders for every position (or only ``symbols``), with estimated prices.

    Working orders in those symbols are listed in ``cancel_first``: the engine cancels them
    before it sends the closing orders, so a resting entry cannot reopen the position. While
    flattening the engine stays at least REDUCING (``trading_state``).
    """
    wanted = set(symbols) if symbols is not None else None
    positions = [p for s, p in sorted(account.positions.items()) if not p.is_flat and (wanted is None or s in wanted)]
    lines = tuple(_line(p, market, now) for p in positions)
    held = {p.symbol for p in positions}
    cancel = tuple(o.order_ref for o in account.working_orders if o.symbol in held and o.status.is_working)
    warnings = tuple(f"{ln.ticket.symbol}: no price to estimate the fill" for ln in lines
                     if math.isnan(ln.estimated_price))  # fmt: skip
    state = current if current is TradingState.HALTED else TradingState.REDUCING
    return FlattenPreview(now, lines, cancel, warnings, state)


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


def _line(position: Position, market: MarketSnapshot, now: datetime) -> FlattenLine:
    side = Side.SELL if position.quantity > 0 else Side.BUY
    qty = abs(position.quantity)
    price, source = _estimate(position, side, market)
    ticket = OrderTicket(position.symbol, side, qty, OrderType.MKT, strategy=FLATTEN_STRATEGY,
                         reason="flatten", signal_price=price, created_at=now, reduce_only=True)  # fmt: skip
    pnl = position.quantity * (price - position.avg_cost)
    return FlattenLine(ticket, position.quantity, price, source, qty * price, pnl)


def _estimate(position: Position, side: Side, market: MarketSnapshot) -> tuple[float, str]:
    """Expected fill: the near side of the book for the closing order, else last, else the mark."""
    quote = market.quotes.get(position.symbol)
    if quote is not None and quote.has_two_sides and not quote.is_crossed:
        return (quote.bid, "bid") if side is Side.SELL else (quote.ask, "ask")
    if quote is not None and quote.last > 0:
        return quote.last, "last"
    if position.market_price > 0:
        return position.market_price, "mark"
    return math.nan, "none"


def check_flatten_ticket(
    ticket: OrderTicket, account: AccountSnapshot, in_flight: Sequence[Order] = ()
) -> RiskVerdict:
    """The gate for a flatten ticket, in any trading state: reduce-only, never past flat."""
    leg = build_book(account, MarketSnapshot(), in_flight).leg(ticket.symbol)
    ok = ticket.reduce_only and ticket.quantity > 0 and leg.reduces(ticket.side, ticket.quantity)
    msg = "" if ok else "flatten order must be reduce-only and not take the position past flat"
    return RiskVerdict(ok, (CheckResult("flatten", ok, abs(leg.position), ticket.quantity, message=msg),))
