"""Order tickets (what a strategy or operator asks for), orders (what the engine tracks) and fills."""

from __future__ import annotations

import math
from collections.abc import Callable, Container
from dataclasses import dataclass, field, replace
from datetime import datetime

from tui_trader.domain.enums import OrderStatus, OrderType, Side, TimeInForce

# Enum members as module globals: on Python 3.11 ``OrderType.LMT`` costs ~90 ns a read, and
# the gate prices every working order on every check.
_BUY, _LMT, _STP, _STP_LMT = Side.BUY, OrderType.LMT, OrderType.STP, OrderType.STP_LMT


@dataclass(frozen=True, slots=True)
class Bracket:
    """Protective exits attached to an entry: held at the broker as OCA children."""

    stop_price: float | None = None
    take_profit_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None

    @property
    def trails(self) -> bool:
        """The stop is a trailing one (sent as TRAIL; ``stop_price`` is where it starts)."""
        return bool(self.trail_amount or self.trail_percent)


MANUAL = "manual"
"""The :attr:`OrderTicket.strategy` of the operator's tickets (typed in the console), and the owner of the positions
they open."""


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
    strategy: str = MANUAL
    reason: str = ""
    bracket: Bracket | None = None
    signal_price: float = math.nan
    created_at: datetime | None = None
    reduce_only: bool = False

    @property
    def signed_quantity(self) -> float:
        """Quantity with the side's sign: positive buys, negative sells."""
        return self.side.sign * self.quantity

    def stamped(self, created_at: datetime | None, signal_price: float, reduce_only: bool) -> OrderTicket:
        """A copy with its creation time, signal price and reduce-only flag set (every field spelled
        out, not ``dataclasses.replace``: this runs on every order; a test fails when a field is added)."""
        return OrderTicket(self.symbol, self.side, self.quantity, self.order_type, self.limit_price, self.stop_price,
                           self.trail_amount, self.trail_percent, self.tif, self.outside_rth, self.strategy,
                           self.reason, self.bracket, signal_price, created_at, reduce_only)

    @property
    def own_price(self) -> float:
        """The price the order type gives it: a LMT's limit, a STP's stop, the larger of a STP LMT's two;
        NaN for other types (IB ignores a limit or stop price on them, ``order_to_ib``) or when unset."""
        order_type = self.order_type
        if order_type is _LMT:
            price = self.limit_price
        elif order_type is _STP:
            price = self.stop_price
        elif order_type is _STP_LMT:
            limit, stop = self.limit_price or math.nan, self.stop_price or math.nan
            price = limit if limit > stop or not stop > 0 else stop  # the larger, a NaN one left out
        else:
            return math.nan
        return price if price is not None and price > 0 else math.nan

    def price_for_notional(self, reference: float) -> float:
        """Price to value the order at: the larger of :attr:`own_price` and ``reference``, except that
        a buy's limit (LMT, STP LMT) caps what it can pay, so that limit is its price.

        ``reference`` is the far side of the quote (the ask for a buy, the bid for a sell), NaN when
        unknown. The larger, because a price the order will not fill at must not make it look small:
        a sell limit far below the bid fills at the bid, a buy stop below the ask triggers at once.
        NaN when neither is known.
        """
        if self.side is _BUY and (self.order_type is _LMT or self.order_type is _STP_LMT):
            limit = self.limit_price
            return limit if limit is not None and limit > 0 else reference
        own = self.own_price
        if reference > own or not own > 0:  # NaN compares false: a NaN own price yields the reference
            return reference
        return own


NOT_STRATEGY_NAMES = frozenset({MANUAL, "adopted", "flatten", "max_holding"})
"""What orders no strategy signalled carry as their :attr:`OrderTicket.strategy`: the operator's tickets (``manual``),
orders adopted from the broker, flattens and maximum holding time exits. A strategy loaded under one of them gets a
``#2`` (or it would own the operator's positions); the approval modal says whose such an order is, and shows the
price now rather than a drift since a signal."""


def larger_of(held: OrderTicket, asked: OrderTicket) -> OrderTicket:
    """``asked`` with each figure a modify can change the larger of the two tickets': quantity, limit, stop.

    An order being modified from ``held`` to ``asked`` can fill at either until the broker answers; counted at
    this ticket it is no smaller than either on any figure the risk checks read. The larger quantity: the
    position a fill can reach, the exposure, whether another order only reduces, a buy's cash. The higher
    prices: a buy's cash is its limit (a stop's at the ask, or the stop above it), and a symbol without a quote
    is valued at an order's price. A higher stop under a long is a tighter one, but no pre-trade check reads
    an order's stop as protection.
    """
    return replace(asked, quantity=max(held.quantity, asked.quantity),
                   limit_price=_higher(held.limit_price, asked.limit_price),
                   stop_price=_higher(held.stop_price, asked.stop_price))


def _higher(a: float | None, b: float | None) -> float | None:
    """The higher of two prices, one unset left out (``None`` when both are)."""
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)


HELD_BY_BROKER = "held: "
"""How the step begins that puts a working order on hold at the broker (:attr:`Order.broker_hold`)."""
LOCATING = "locating shares to borrow"
"""The hold of a short sale while the broker looks for shares to borrow: the order can still fill."""
LOCATE = "locate"
"""IB's ``whyHeld`` for a short sale held while shares to borrow are located (error 404): its status reads
``Inactive``, yet the order lives and can fill at any moment."""
HOLD_REASONS = {LOCATE: LOCATING}
"""The broker's reason for a hold (IB's ``whyHeld``) → the words shown."""


MODIFY_NOTE = "modify requested"
RESIZED_NOTE = "resized with"
"""How the history step of a modify begins: of the order modified, of a bracket child resized with its entry."""
NOT_SENT = "not sent"
"""The end of every note that moves an order journaled as SENDING on without placing it (the engine's ``_not_sent``;
the orders pane reads it: NOT SENT, not a broker's CANCELLED)."""
DRY_RUN_NOTE = f"dry run: {NOT_SENT}"
"""The note of an order a dry run recorded instead of sending it (the pane reads it: DRY RUN)."""
NOT_SENT_NOTE = "modify not sent"
"""How the step begins that puts an order back to its figures before a modification that was not sent."""
REFUSED_NOTE = "modify refused by the broker"
"""How the history step begins that puts an order back to the figures the broker kept."""
FIGURES_NOTE = "figures at the broker"
"""How the step begins that takes a working order's figures from the broker (a reconciliation)."""
AMENDMENT_NOTES = (MODIFY_NOTE, RESIZED_NOTE, NOT_SENT_NOTE, REFUSED_NOTE, FIGURES_NOTE)
"""How each step begins that changes a working order's figures, never its state at the broker (the order
manager's ``amend``): :attr:`Order.broker_hold` looks past them."""


def figures(ticket: OrderTicket) -> str:
    """A ticket's figures a modify may change, in words: ``quantity 100, limit 10.5, stop 9.8``."""
    prices = (("limit", ticket.limit_price), ("stop", ticket.stop_price))
    return ", ".join([f"quantity {ticket.quantity:g}", *(f"{k} {v:g}" for k, v in prices if v is not None)])


def order_words(order: Order) -> str:
    """An order in a line of the operator's record: ``tt1a2b3c-4 (SELL 10 AAPL STP)``."""
    t = order.ticket
    return f"{order.order_ref} ({t.side.value} {t.quantity:g} {t.symbol} {t.order_type.value})"


def hold_note(why_held: str) -> str:
    """The note of the step that puts an order on hold for ``why_held`` (one of :data:`HOLD_REASONS`)."""
    return HELD_BY_BROKER + HOLD_REASONS[why_held]


SHARED_REF_SEP = "#"
"""What separates a broker's orderRef from the key in the name of another order placed under it
(:func:`shared_ref_name`: ``bot1#22``)."""


def shared_ref_name(order_ref: str, key: int | str) -> str:
    """``bot1#22``: the name of an order placed under the broker's orderRef ``order_ref`` when another order has that
    orderRef already, told apart by ``key`` (its permanent id; ``?`` where which order it is is uncertain).

    Another tool (or a TWS user) may place several orders under one fixed orderRef: each is an order of its own.
    """
    return f"{order_ref}{SHARED_REF_SEP}{key}"


def base_ref(name: str) -> str:
    """The broker's orderRef of an order named by :func:`shared_ref_name` (``bot1`` of ``bot1#22``); ``name`` itself
    when it has no key. The key is the part after the last separator: an orderRef may hold one itself."""
    ref, sep, _ = name.rpartition(SHARED_REF_SEP)
    return ref if sep else name


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

    def held_for(self, working_refs: Container[str]) -> bool:
        """A bracket child whose entry (its parent) is among ``working_refs``, still working: the broker
        holds it inactive until the entry has filled in full, so it protects none of a part already filled
        (the simulator keeps it ``PreSubmitted`` until then: ``SimEngine._after_fill``)."""
        return self.parent_ref is not None and self.parent_ref in working_refs

    @property
    def broker_hold(self) -> str:
        """Why the broker holds this working order unworked (:data:`LOCATING`), ``""`` when it does not.

        Said by the note of its last step but the engine's amendments (:data:`AMENDMENT_NOTES`: a modify
        changes figures, not what the broker does with the order), so it goes wherever the order goes:
        journal, snapshots, console. Only the broker ends it, with a step of its own: its next status, a
        fill, a cancel.
        """
        if not self.status.is_working:
            return ""
        for step in reversed(self.history):
            note = step.note
            if not note.startswith(AMENDMENT_NOTES):
                return note[len(HELD_BY_BROKER):] if note.startswith(HELD_BY_BROKER) else ""
        return ""

    @property
    def modifiable(self) -> bool:
        """Working at the broker and acknowledged there: it can be re-placed with new figures."""
        return self.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED) and self.broker_id is not None

    def may_be(self, perm_id: int | None) -> bool:
        """Whether a broker record with the permanent id ``perm_id`` may be about this order: not when both ids are
        known and differ (another tool may place several orders under one orderRef: each is an order of its own)."""
        return not (perm_id and self.perm_id and perm_id != self.perm_id)

    def with_status(self, status: OrderStatus, when: datetime, note: str = "") -> Order:
        """A copy moved to ``status`` with the step appended to its history."""
        # Every field spelled out, not ``dataclasses.replace`` (≈3× slower): the order path copies
        # an order several times before each send. A test fails when a field is added.
        return Order(self.order_ref, self.ticket, status, self.created_at, when, self.broker_id, self.perm_id,
                     self.parent_ref, self.filled_quantity, self.avg_fill_price, self.commission, self.last_error,
                     (*self.history, StatusChange(status, when, note)))

    def with_broker_id(self, broker_id: int) -> Order:
        """A copy sent under ``broker_id`` (every field spelled out, as in :meth:`with_status`)."""
        return Order(self.order_ref, self.ticket, self.status, self.created_at, self.updated_at, broker_id,
                     self.perm_id, self.parent_ref, self.filled_quantity, self.avg_fill_price, self.commission,
                     self.last_error, self.history)


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
    perm_id: int | None = None
    """The broker's permanent id of the order it filled (None: not reported): it tells two orders placed under one
    orderRef apart."""

    @property
    def signed_quantity(self) -> float:
        """Quantity with the side's sign."""
        return self.side.sign * self.quantity

    @property
    def notional(self) -> float:
        """Quantity times price."""
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The broker's estimate of what an order would do to the account, asked without placing it
    (IB's what-if order: checked like an order, never transmitted). ``None``: not given."""

    init_margin_change: float | None = None
    maint_margin_change: float | None = None
    equity_with_loan_change: float | None = None
    commission: float | None = None
    warning: str = ""
    """The broker's warning about the order, when it gave one."""


def order_of(order_ref: str, perm_id: int | None, by_ref: Callable[[str], Order | None],
             by_perm: Callable[[int], Order | None]) -> Order | None:
    """The order a broker record (a report, an execution) under ``order_ref`` with the permanent id ``perm_id`` is
    about: the one ``order_ref`` names (``by_ref``) unless both permanent ids are known and differ
    (:meth:`Order.may_be`: another order under the same orderRef), else the one with ``perm_id`` (``by_perm``);
    ``None`` when neither is known. One rule for the engine's book and for the journal's readers."""
    named = by_ref(order_ref) if order_ref else None
    if named is not None and named.may_be(perm_id):
        return named
    return by_perm(perm_id) if perm_id else None
