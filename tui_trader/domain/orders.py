"""Order tickets (what a strategy or operator asks for), orders (what the engine tracks) and fills."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

from tui_trader.domain.enums import OrderStatus, OrderType, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class Bracket:
    """Protective exits attached to an entry: held at the broker as OCA children."""

    stop_price: float | None = None
    take_profit_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None


@dataclass(frozen=True, slots=True)
class OrderTicket:
    """An order intent before the engine has assigned it an id.

    Prices are absolute; ``signal_price`` is the reference price when the intent was
    created so the approval modal can show how far the market drifted since.
    """

    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MKT
    limit_price: float | None = None
    stop_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    outside_rth: bool = False
    strategy: str = "manual"
    reason: str = ""
    bracket: Bracket | None = None
    signal_price: float = math.nan
    created_at: datetime | None = None
    reduce_only: bool = False

    @property
    def signed_quantity(self) -> float:
        """Quantity with the side's sign: positive buys, negative sells."""
        return self.side.sign * self.quantity

    def price_for_notional(self, reference: float) -> float:
        """Price used to estimate notional: limit, else stop, else the reference."""
        for price in (self.limit_price, self.stop_price):
            if price is not None and price > 0:
                return price
        return reference


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One step of an order's state history."""

    status: OrderStatus
    time: datetime
    note: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the engine tracks it, from approval to its final state.

    ``order_ref`` is the idempotent reference sent to the broker as ``orderRef``; the
    broker's ``broker_id`` and ``perm_id`` arrive with the acknowledgement.
    """

    order_ref: str
    ticket: OrderTicket
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    broker_id: int | None = None
    perm_id: int | None = None
    parent_ref: str | None = None
    filled_quantity: float = 0.0
    avg_fill_price: float = 0.0
    commission: float = 0.0
    last_error: str = ""
    history: tuple[StatusChange, ...] = field(default_factory=tuple)

    @property
    def symbol(self) -> str:
        """Symbol of the ticket."""
        return self.ticket.symbol

    @property
    def remaining(self) -> float:
        """Quantity not yet filled."""
        return max(self.ticket.quantity - self.filled_quantity, 0.0)

    def with_status(self, status: OrderStatus, when: datetime, note: str = "") -> Order:
        """A copy moved to ``status`` with the step appended to its history."""
        step = StatusChange(status, when, note)
        return replace(self, status=status, updated_at=when, history=(*self.history, step))


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, unique by ``exec_id``; commission attaches when the broker reports it."""

    exec_id: str
    order_ref: str
    symbol: str
    side: Side
    quantity: float
    price: float
    time: datetime
    broker_id: int | None = None
    commission: float | None = None
    realized_pnl: float | None = None

    @property
    def signed_quantity(self) -> float:
        """Quantity with the side's sign."""
        return self.side.sign * self.quantity

    @property
    def notional(self) -> float:
        """Quantity times price."""
        return self.quantity * self.price
