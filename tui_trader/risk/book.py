"""The book the limits are measured against: positions plus every working and in-flight order.

RTS 6 Art. 15(2): an order sent but not yet acknowledged already uses its share of a limit. The
book therefore merges the account's working orders with the caller's in-flight orders and, per
symbol, keeps the position and the remaining quantity of working buys and sells. Limits use the
worst case: every working order on the side that grows the position fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tui_trader.domain import AccountSnapshot, MarketSnapshot, Order, OrderStatus, Side


@dataclass(frozen=True, slots=True)
class Leg:
    """One symbol of the book: signed position and working buy/sell quantities (both >= 0)."""

    position: float = 0.0
    buys: float = 0.0
    sells: float = 0.0

    @property
    def worst_long(self) -> float:
        """Signed position if every working buy fills."""
        return self.position + self.buys

    @property
    def worst_short(self) -> float:
        """Signed position if every working sell fills."""
        return self.position - self.sells

    @property
    def worst_abs(self) -> float:
        """Largest absolute position any fill sequence of working orders can reach."""
        return max(abs(self.worst_long), abs(self.worst_short))

    @property
    def is_open(self) -> bool:
        """True with a position or any working order."""
        return self.position != 0 or self.buys > 0 or self.sells > 0

    def adding(self, side: Side, quantity: float) -> Leg:
        """The leg with one more working order."""
        if side is Side.BUY:
            return Leg(self.position, self.buys + quantity, self.sells)
        return Leg(self.position, self.buys, self.sells + quantity)

    def reduces(self, side: Side, quantity: float) -> bool:
        """True when an order only reduces the position and, with the working orders on its
        side, never takes it past flat."""
        if self.position == 0 or side.sign == (1 if self.position > 0 else -1):
            return False
        pending = self.buys if side is Side.BUY else self.sells
        return pending + quantity <= abs(self.position) + 1e-9


_EMPTY = Leg()


@dataclass(frozen=True, slots=True)
class Book:
    """Positions and working orders by symbol, with a mark price for each symbol."""

    legs: dict[str, Leg]
    prices: dict[str, float]
    working: tuple[Order, ...]

    def leg(self, symbol: str) -> Leg:
        """The leg of ``symbol`` (empty when the book holds nothing in it)."""
        return self.legs.get(symbol, _EMPTY)

    def price(self, symbol: str) -> float:
        """Mark price of ``symbol``, NaN when unknown."""
        return self.prices.get(symbol, math.nan)

    def gross(self, override: tuple[str, Leg] | None = None) -> float:
        """Worst-case gross exposure (sum of absolute values), ``override`` replacing one leg."""
        return sum(leg.worst_abs * self._px(sym) for sym, leg in self._legs(override))

    def open_count(self) -> int:
        """Number of symbols with a position or a working order."""
        return sum(1 for leg in self.legs.values() if leg.is_open)

    def buy_commitment(self) -> float:
        """Cash the working buy orders would consume if they all filled."""
        return sum(
            o.remaining * o.ticket.price_for_notional(self._px(o.symbol))
            for o in self.working
            if o.ticket.side is Side.BUY
        )

    def _px(self, symbol: str) -> float:
        """Mark of ``symbol``; NaN when unknown, so that any limit measured with it denies."""
        return self.prices.get(symbol, math.nan)

    def _legs(self, override: tuple[str, Leg] | None) -> Iterable[tuple[str, Leg]]:
        if override is None:
            return self.legs.items()
        return {**self.legs, override[0]: override[1]}.items()


def counted_orders(
    account: AccountSnapshot, in_flight: Sequence[Order], exclude_ref: str | None = None
) -> tuple[Order, ...]:
    """Working and in-flight orders that use limits, deduplicated by ref (in-flight wins).

    Orders still waiting for approval are not counted: each is checked again before it is sent,
    against the orders sent meanwhile. ``exclude_ref`` drops the order being re-checked or modified.
    """
    merged: dict[str, Order] = {}
    for order in (*account.working_orders, *in_flight):
        status = order.status
        if status.is_final or status is OrderStatus.PENDING_APPROVAL or order.order_ref == exclude_ref:
            merged.pop(order.order_ref, None)
            continue
        merged[order.order_ref] = order
    return tuple(merged.values())


def build_book(
    account: AccountSnapshot,
    market: MarketSnapshot,
    in_flight: Sequence[Order] = (),
    exclude_ref: str | None = None,
    fallback_prices: Mapping[str, float] | None = None,
) -> Book:
    """Aggregate positions and counted orders by symbol, with marks from quotes or positions.

    ``fallback_prices`` prices symbols whose mark is unknown (the ticket's own limit price, say).
    """
    working = counted_orders(account, in_flight, exclude_ref)
    acc: dict[str, list[float]] = {s: [p.quantity, 0.0, 0.0] for s, p in account.positions.items()}
    for order in working:
        row = acc.setdefault(order.symbol, [0.0, 0.0, 0.0])
        row[1 if order.ticket.side is Side.BUY else 2] += order.remaining
    legs = {s: Leg(r[0], r[1], r[2]) for s, r in acc.items()}
    fallback = fallback_prices or {}
    prices = {s: _mark(s, account, market, working) for s in {*legs, *fallback}}
    for symbol, price in fallback.items():
        if not prices[symbol] > 0:
            prices[symbol] = price
    return Book(legs=legs, prices=prices, working=working)


def _mark(symbol: str, account: AccountSnapshot, market: MarketSnapshot, working: Sequence[Order]) -> float:
    """Best known price of ``symbol``: quote mark, position mark, position cost, order price."""
    quote = market.quotes.get(symbol)
    if quote is not None and quote.mark > 0:
        return quote.mark
    pos = account.positions.get(symbol)
    if pos is not None:
        for price in (pos.market_price, pos.avg_cost):
            if price > 0:
                return price
    for order in working:
        if order.symbol == symbol:
            price = order.ticket.price_for_notional(math.nan)
            if price > 0:
                return price
    return math.nan
