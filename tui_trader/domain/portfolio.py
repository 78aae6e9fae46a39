"""Positions and account snapshots."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from tui_trader.domain.enums import OrderType
from tui_trader.domain.orders import Order, OrderTicket


@dataclass(frozen=True, slots=True)
class Position:
    """A signed position in one symbol (positive long, negative short)."""

    symbol: str
    quantity: float
    avg_cost: float
    market_price: float = math.nan
    realized_pnl: float = 0.0
    opened_at: datetime | None = None
    stop_price: float | None = None
    take_profit_price: float | None = None
    stop_trails: bool = False
    """The stop is a trailing one: ``stop_price`` is where it started, and the broker moves it only in
    the position's favour (up under a long, down under a short), without telling the client."""
    owner: str = ""
    """Who opened the position from flat, when nothing else has added to it since: a strategy's name
    (only then does that strategy's exit or opposite signal close it), ``"manual"`` for the operator's
    tickets; ``""`` when no single opener is known (added to by another, adopted from the broker, held
    before a restart that could not tell). Reducing it does not change it
    (:func:`tui_trader.engine.portfolio.apply_fill_to_position`)."""

    def marked(self, price: float) -> Position:
        """A copy valued at ``price`` (every field spelled out, not ``dataclasses.replace``: this runs
        on every quote of a held symbol, before an order it triggers; a test fails when a field is added)."""
        return Position(self.symbol, self.quantity, self.avg_cost, price, self.realized_pnl, self.opened_at,
                        self.stop_price, self.take_profit_price, self.stop_trails, self.owner)

    @property
    def is_flat(self) -> bool:
        """True with no quantity."""
        return self.quantity == 0

    @property
    def market_value(self) -> float:
        """Signed value at the mark, or at cost when no mark is known."""
        price = self.market_price if self.market_price > 0 else self.avg_cost
        return self.quantity * price

    @property
    def unrealized_pnl(self) -> float:
        """Open P&L at the mark; 0 without a mark."""
        if not self.market_price > 0:
            return 0.0
        return self.quantity * (self.market_price - self.avg_cost)


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Everything the risk engine needs to know about the account at one instant."""

    time: datetime
    account_id: str = ""
    cash: float = 0.0
    equity: float = 0.0
    start_of_day_equity: float = 0.0
    high_water_mark: float = 0.0
    realized_pnl_today: float = 0.0
    unrealized_pnl: float = 0.0
    commissions_today: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)
    working_orders: tuple[Order, ...] = ()
    trades_today: int = 0
    trades_today_by_strategy: dict[str, int] = field(default_factory=dict)
    losing_streak: int = 0
    last_loss_at: datetime | None = None
    known: bool = True
    """The figures come from the broker or a journal; False before either gave any (cash and equity
    are then 0 as placeholders, not as the account's: shown as unknown)."""

    @property
    def day_pnl(self) -> float:
        """Realized plus unrealized P&L since the start of the trading day."""
        return self.equity - self.start_of_day_equity if self.start_of_day_equity else (
            self.realized_pnl_today + self.unrealized_pnl
        )

    @property
    def gross_exposure(self) -> float:
        """Sum of absolute position values."""
        return sum(abs(p.market_value) for p in self.positions.values())

    @property
    def net_exposure(self) -> float:
        """Sum of signed position values."""
        return sum(p.market_value for p in self.positions.values())

    @property
    def drawdown(self) -> float:
        """Money lost from the equity high-water mark (>= 0)."""
        return max(self.high_water_mark - self.equity, 0.0)

    def position_quantity(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0 when flat)."""
        pos = self.positions.get(symbol)
        return pos.quantity if pos else 0.0

    def stop_covered(self, symbol: str) -> float:
        """How much of ``symbol``'s position its working protective stops would close (their remaining
        quantity on the closing side): a stop placed with a bracket of 10 covers 10 of a position grown
        to 100 by a plain buy. A bracket's stop covers nothing while its entry still works: the broker
        holds it until the entry has filled in full (:meth:`Order.held_for`, :meth:`stop_held`)."""
        return sum(o.remaining for o in self._stops(symbol, held=False))

    def stop_held(self, symbol: str) -> float:
        """How much ``symbol``'s bracket stops held by the broker until their entry fills would close once
        it has: what :meth:`stop_covered` leaves out (30 filled of a bracket of 100 have no stop yet)."""
        return sum(o.remaining for o in self._stops(symbol, held=True))

    def with_tickets(self, tickets: Mapping[str, OrderTicket]) -> AccountSnapshot:
        """This account with its working orders named in ``tickets`` (by ``order_ref``) at those figures, and
        the stop and target of the positions they protect figured again from them (:func:`protection`): the
        account as the broker holds it while modifications of its orders are unconfirmed (their figures held),
        or as it will once it has confirmed them (their figures asked)."""
        if not tickets:
            return self
        working = tuple(replace(o, ticket=t) if (t := tickets.get(o.order_ref)) is not None else o
                        for o in self.working_orders)
        positions = dict(self.positions)
        for symbol in self.protected_by(tickets):
            stop, target, trails = protection(working, symbol, positions[symbol].quantity)
            positions[symbol] = replace(positions[symbol], stop_price=stop, take_profit_price=target,
                                        stop_trails=trails)
        return replace(self, working_orders=working, positions=positions)

    def protected_by(self, order_refs: Iterable[str]) -> set[str]:
        """The symbols of the positions whose stop or target the working orders named in ``order_refs`` are:
        those :meth:`with_tickets` figures again when it is given tickets for them."""
        refs = set(order_refs)
        return {o.symbol for o in self.working_orders
                if o.order_ref in refs and o.ticket.reduce_only and o.symbol in self.positions}

    def _stops(self, symbol: str, held: bool) -> list[Order]:
        """``symbol``'s working protective stops on the closing side: those held for their entry, or the others."""
        quantity = self.position_quantity(symbol)
        mine = [o for o in self.working_orders if o.symbol == symbol]
        entries = {o.order_ref for o in mine}
        return [o for o in mine if o.ticket.reduce_only and o.ticket.side.sign * quantity < 0
                and (o.ticket.stop_price or o.ticket.order_type is OrderType.TRAIL) and o.held_for(entries) is held]


def protection(working: Iterable[Order], symbol: str,
               quantity: float) -> tuple[float | None, float | None, bool]:
    """``symbol``'s protective stop (a trailing one's start), target, and whether the stop trails, as its
    ``working`` reduce-only orders that would close its position of ``quantity`` (signed) give them: the first
    with a stop price, the first with a limit price, among those on the closing side with something left.

    One on the position's own side closes none of it (a long reversed short by a manual sell, its old sell stop's
    cancel unanswered: the short showed that stop, which would add to it), and a flat position has none."""
    mine = [o.ticket for o in working if o.symbol == symbol and o.ticket.reduce_only
            and o.ticket.side.sign * quantity < 0 and o.remaining > 0]
    stop = next((t for t in mine if t.stop_price), None)
    target = next((t.limit_price for t in mine if t.limit_price), None)
    return (stop.stop_price if stop else None), target, stop is not None and stop.order_type is OrderType.TRAIL


def held_words(symbol: str, quantity: float, written: Callable[[float], str] = "{:g}".format) -> str:
    """A position in words: ``AAPL LONG 25`` (``quantity`` signed; ``written``: how its size is written)."""
    return f"{symbol} {'LONG' if quantity > 0 else 'SHORT'} {written(abs(quantity))}"


def unprotected_positions(account: AccountSnapshot,
                          quantity: Callable[[float], str] = "{:g}".format) -> tuple[str, ...]:
    """The open positions no protective stop covers at the broker, wholly or in part, as ``AAPL LONG 25``
    (``AAPL LONG 100 (a stop for 10 only)``, ``AAPL LONG 30 (its stop not active yet)``): what the console's
    quit and kill-reset dialogs name, and the engine's warning as a reset resumes trading.

    A stop covering less than the position, or none of it while the broker holds it for its bracket entry
    (:meth:`AccountSnapshot.stop_held`), is named with what it covers. A position whose stop is shown but
    covers none of it, held for no entry either (no working stop on its closing side: the position's stop
    and its working orders disagree), is named as one with no stop: only a working stop protects.
    ``quantity``: how a quantity is written.
    """
    out = []
    for p in account.positions.values():
        if not p.quantity:
            continue
        held = held_words(p.symbol, p.quantity, quantity)
        covered = account.stop_covered(p.symbol)
        waiting = not covered and account.stop_held(p.symbol) > 0
        if not p.stop_price or not (covered > 0 or waiting):
            out.append(held)
        elif covered < abs(p.quantity) - 1e-9:
            out.append(f"{held} (a stop for {quantity(covered)} only)" if covered
                       else f"{held} (its stop not active yet)")
    return tuple(out)
