"""The book the limits are measured against: positions plus every working and in-flight order.

RTS 6 Art. 15(2): an order sent but not yet acknowledged already uses its share of a limit. The
book therefore merges the account's working orders with the caller's in-flight orders and, per
symbol, keeps the position and the remaining quantity of working buys and sells. Limits use the
worst case: every working order on the side that grows the position fills.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from tui_trader.domain import AccountSnapshot, MarketSnapshot, Order, OrderStatus, OrderType, Side
from tui_trader.domain.enums import FINAL_STATUSES


class Leg(NamedTuple):
    """One symbol of the book: signed position and working buy/sell quantities (both >= 0).

    A NamedTuple rather than a frozen dataclass: the gate builds one per symbol on every check,
    and a tuple is several times cheaper to create.
    """

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
        long, short = abs(self.position + self.buys), abs(self.position - self.sells)
        return short if short > long else long  # max(long, short) with NaN kept, without the call (every check)

    @property
    def is_open(self) -> bool:
        """True with a position or any working order."""
        return self.position != 0 or self.buys > 0 or self.sells > 0

    def adding(self, side: Side, quantity: float) -> Leg:
        """The leg with one more working order."""
        if side is _BUY:
            return Leg(self.position, self.buys + quantity, self.sells)
        return Leg(self.position, self.buys, self.sells + quantity)

    def reduces(self, side: Side, quantity: float) -> bool:
        """True when an order only reduces the position and, with the working orders on its
        side, never takes it past flat."""
        buy = side is _BUY
        if self.position == 0 or buy == (self.position > 0):  # flat, or the order adds to the position
            return False
        pending = self.buys if buy else self.sells
        return pending + quantity <= abs(self.position) + 1e-9


_EMPTY = Leg()
_ZERO = (0.0, 0.0, 0.0)  # the row of a symbol without a position, before its first order
# Globals: a read of ``OrderType.LMT`` or ``Side.BUY`` costs ~90 ns on Python 3.11, once per working order.
_LMT, _BUY = OrderType.LMT, Side.BUY
_NOT_COUNTED = FINAL_STATUSES | {OrderStatus.PENDING_APPROVAL}


class Book(NamedTuple):
    """Positions and working orders by symbol, with a mark price for each symbol.

    Immutable; a NamedTuple like :class:`Leg` because one is built on every check.

    ``rows`` holds (position, working buys, working sells) per symbol. The aggregates (gross
    exposure, open count, buy commitment) are computed once when the book is built: the gate
    asks for them on every order.
    """

    rows: dict[str, tuple[float, float, float]]
    prices: dict[str, float]
    working: tuple[Order, ...]
    exposures: dict[str, float]
    gross_total: float
    open_total: int
    buy_total: float

    @property
    def legs(self) -> dict[str, Leg]:
        """Every symbol's leg."""
        return {s: Leg(*r) for s, r in self.rows.items()}

    def leg(self, symbol: str) -> Leg:
        """The leg of ``symbol`` (empty when the book holds nothing in it)."""
        row = self.rows.get(symbol)
        return Leg(*row) if row is not None else _EMPTY

    def price(self, symbol: str) -> float:
        """Mark price of ``symbol``; NaN when unknown, so that any limit measured with it denies."""
        return self.prices.get(symbol, math.nan)

    def gross(self, symbol: str | None = None, worst_abs: float = 0.0) -> float:
        """Worst-case gross exposure (sum of absolute values); with ``symbol``, that symbol's
        :attr:`Leg.worst_abs` replaced by ``worst_abs`` (its leg with one more order, say)."""
        if symbol is None:
            return self.gross_total
        return self.gross_total - self.exposures.get(symbol, 0.0) + worst_abs * self.prices.get(symbol, math.nan)

    def open_count(self) -> int:
        """Number of symbols with a position or a working order."""
        return self.open_total

    def buy_commitment(self) -> float:
        """Cash the working buy orders would consume if they all filled."""
        return self.buy_total


def counted_orders(
    account: AccountSnapshot, in_flight: Sequence[Order], exclude_ref: str | None = None
) -> tuple[Order, ...]:
    """Working and in-flight orders that use limits, deduplicated by ref (in-flight wins).

    Orders still waiting for approval are not counted: each is checked again before it is sent,
    against the orders sent meanwhile. ``exclude_ref`` drops the order being re-checked or modified,
    with its bracket children (the ticket being checked already stands for the whole bracket), and
    for a bracket's child its siblings: the stop and the target are one OCA group, each fill of one
    reduces the other, so they are alternatives to it, not orders beside it (counted beside it, a
    stop cut to a smaller position was "not reducing" while the target was still the old size).
    """
    family: tuple[str, ...] = ()
    if exclude_ref is not None:  # the order re-checked with its children and, for a child, its siblings
        mine = (o for group in (account.working_orders, in_flight) for o in group if o.order_ref == exclude_ref)
        parent = next((o.parent_ref for o in mine), None)
        family = (exclude_ref,) if parent is None else (exclude_ref, parent)
    merged: dict[str, Order] = {}
    for orders in (account.working_orders, in_flight):
        for order in orders:
            ref = order.order_ref
            if order.status in _NOT_COUNTED or (family and (ref == exclude_ref or order.parent_ref in family)):
                merged.pop(ref, None)
            else:
                merged[ref] = order
    return tuple(merged.values())


def build_book(
    account: AccountSnapshot,
    market: MarketSnapshot,
    in_flight: Sequence[Order] = (),
    exclude_ref: str | None = None,
    fallback_prices: Mapping[str, float] | None = None,
) -> Book:
    """Aggregate positions and counted orders by symbol, with marks from quotes or positions.

    A working buy commits :meth:`OrderTicket.price_for_notional` at the ask (a buy stop below the ask
    pays the ask; a stray limit on a market order counts for nothing). ``fallback_prices`` prices
    symbols whose mark is unknown (the ticket's own limit price, say).
    """
    working = counted_orders(account, in_flight, exclude_ref)
    rows: dict[str, tuple[float, float, float]] = {}
    for symbol, position in account.positions.items():
        rows[symbol] = (position.quantity, 0.0, 0.0)
    unpriced_buys: list[Order] = []
    buys = 0.0
    quotes = market.quotes
    for order in working:
        ticket = order.ticket
        symbol = ticket.symbol
        held, bought, sold = rows.get(symbol, _ZERO)
        remaining = ticket.quantity - order.filled_quantity
        remaining = 0.0 if remaining < 0.0 else remaining  # max(remaining, 0.0), NaN included
        if ticket.side is not _BUY:
            rows[symbol] = (held, bought, sold + remaining)
            continue
        rows[symbol] = (held, bought + remaining, sold)
        if ticket.order_type is _LMT:  # most working buys: their limit caps them, the ask is not needed
            price = ticket.price_for_notional(math.nan)
        else:  # at the ask (NaN: missing or crossed)
            quote = quotes.get(symbol)
            price = ticket.price_for_notional(math.nan if quote is None else quote.far_side(True))
        if price > 0:
            buys += remaining * price
        else:
            unpriced_buys.append(order)
    return _aggregate(rows, account, market, working, fallback_prices or {}, unpriced_buys, buys)


def _aggregate(
    rows: dict[str, tuple[float, float, float]],
    account: AccountSnapshot,
    market: MarketSnapshot,
    working: tuple[Order, ...],
    fallback: Mapping[str, float],
    unpriced_buys: Sequence[Order],
    buys: float,
) -> Book:
    """Price every symbol and total the book in one pass (this runs on every check)."""
    prices: dict[str, float] = {}
    exposures: dict[str, float] = {}
    gross, open_total = 0.0, 0
    quotes = market.quotes
    for symbol, (pos, bought, sold) in rows.items():
        quote = quotes.get(symbol)
        # The quote's mid, inlined (one of every symbol on every check); otherwise _mark's fallbacks.
        if quote is not None and quote.bid > 0 and quote.ask >= quote.bid:
            price = (quote.bid + quote.ask) / 2
        else:
            price = _mark(symbol, account, market, working)
            if not price > 0:
                price = fallback.get(symbol, price)
        long, short = abs(pos + bought), abs(pos - sold)  # Leg.worst_abs, inlined
        prices[symbol] = price
        exposures[symbol] = exposure = (short if short > long else long) * price
        gross += exposure
        if pos or bought or sold:
            open_total += 1
    for symbol, price in fallback.items():
        if symbol not in prices:
            mark = _mark(symbol, account, market, working)
            prices[symbol] = mark if mark > 0 else price
    if unpriced_buys:  # rare: a working buy without a price of its own or an ask
        buys += sum(o.remaining * prices[o.symbol] for o in unpriced_buys)
    return Book(rows, prices, working, exposures, gross, open_total, buys)


def _mark(symbol: str, account: AccountSnapshot, market: MarketSnapshot, working: Sequence[Order]) -> float:
    """Best known price of ``symbol``: quote mark, position mark, position cost, order price."""
    quote = market.quotes.get(symbol)
    if quote is not None:
        bid, ask = quote.bid, quote.ask
        if bid > 0 and ask >= bid:  # inlined Quote.mark: this runs for every symbol on every check
            return (bid + ask) / 2
        if quote.mark > 0:
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
