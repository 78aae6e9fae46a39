"""The pre-trade gate: the risk engine's verdict plus the engine's own entry blocks, and the account it measures on.

Every order passes the risk engine before it is queued for approval (:mod:`~tui_trader.engine.order_path`)
and again immediately before it is sent (:mod:`~tui_trader.engine.send`). The account an order is
measured on counts the working orders as they can fill: an exit that replaces its symbol's protection
is measured without it (it is cancelled first), a cut of a protective order with the other protective
orders counted each OCA group once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace

from tui_trader.domain.enums import OrderStatus, OrderType
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.core import EngineCore
from tui_trader.risk.book import build_book

S = OrderStatus
EXIT_PENDING = (S.PENDING_APPROVAL, S.APPROVED, S.SENDING, S.SUBMITTED, S.PARTIALLY_FILLED, S.UNKNOWN)
"""An exit in one of these has not ended: another would cancel it as protection and replace it."""
PLACED = (S.SUBMITTED, S.PARTIALLY_FILLED)
"""Acknowledged by the broker and working there (what a modify re-places)."""
CUT_PAST_HALT = CheckResult("trading_state", True, message="trading halted, but an automatic trip keeps the "
                            "positions' protection: a protective order cut to its position passes")
"""The trading-state check of a protective cut that passes HALTED (:meth:`OrderGate._cut_passes_halt`)."""


def _prices(ticket: OrderTicket) -> tuple[object, ...]:
    """What of ``ticket`` a cut leaves as it is: side, type and prices."""
    return (ticket.side, ticket.order_type, ticket.limit_price, ticket.stop_price, ticket.trail_amount,
            ticket.trail_percent)


class OrderGate(EngineCore):
    """The pre-trade gate, and the protection accounting it measures exits and cuts of protective orders with."""

    # -- the gate ------------------------------------------------------------------------------

    def preview(self, ticket: OrderTicket) -> RiskVerdict:
        """Run the pre-trade gate on ``ticket`` without sending anything."""
        return self.verdict(self._prepare(ticket))

    def _prepare(self, ticket: OrderTicket) -> OrderTicket:
        created_at = ticket.created_at if ticket.created_at is not None else self.now()
        signal = ticket.signal_price if not math.isnan(ticket.signal_price) else self.market.mark(ticket.symbol)
        reduce_only = ticket.reduce_only or (ticket.strategy == "flatten" and self.reduces_position(ticket))
        if created_at is ticket.created_at and signal is ticket.signal_price and reduce_only is ticket.reduce_only:
            return ticket
        return ticket.stamped(created_at, signal, reduce_only)

    def verdict(self, ticket: OrderTicket, order_ref: str | None = None) -> RiskVerdict:
        """The risk engine's verdict plus the engine's own entry blocks."""
        now = self.now()
        # The snapshot and the orders in flight are read only if an enabled check needs the account or the book.
        account = self._account_for(ticket, order_ref)
        verdict = self.risk.check(ticket, account, self.market.view(), now, self._in_flight_orders, order_ref)
        if not verdict.passed and order_ref is not None and self._cut_passes_halt(verdict, ticket, order_ref):
            checks = (CUT_PAST_HALT if c.name == "trading_state" else c for c in verdict.checks)
            verdict = RiskVerdict(True, tuple(checks))
        extra = self._engine_checks(ticket, order_ref)
        if extra:
            return RiskVerdict(False, (*extra, *verdict.checks))
        return verdict

    def _cut_passes_halt(self, verdict: RiskVerdict, ticket: OrderTicket, order_ref: str) -> bool:
        """Only the trading state denies ``ticket``, and it cuts protective order ``order_ref`` to a smaller size
        (:meth:`_cuts_protection`) that only takes its position toward flat, while the kill switch engaged is an
        automatic trip's, which keeps the positions' protection: it passes HALTED.

        A position mismatch (a part sold in TWS, while tui-trader was away or running) trips the kill switch by
        default, and its cut was denied: a stop of 10 left under LONG 5 sold 10 and left the account SHORT 5. The
        trip keeps the stops so that the positions stay protected; a stop larger than its position does not
        protect it, it reverses it. Nothing else passes: not a new order, not a grown one, not a price moved
        (the operator's modifies included). Not under the operator's kill (Ctrl+K, also on top of a trip): it
        cancels every protective order in its scope on purpose, a modify is a ``placeOrder`` of the same order
        that would race its cancel, and whatever the kill could not cancel its verification names CRITICAL for
        the operator to deal with (as a lost stop is not placed again then:
        :meth:`~tui_trader.engine.protection.Protection._stop_lost`). Every other check still applies."""
        order = self.orders.get(order_ref)
        if (order is None or not self._keeps_protection or {c.name for c in verdict.failures} != {"trading_state"}
                or not self._cuts_protection(ticket, order_ref)):
            return False
        held = self.portfolio.quantity(ticket.symbol)
        left = ticket.quantity - order.filled_quantity
        return (ticket.quantity < self.placed_ticket(order).quantity - 1e-9 and ticket.side.sign * held < 0
                and left <= abs(held) + 1e-9)

    @property
    def _keeps_protection(self) -> bool:
        """The engaged kill keeps the positions' protective orders (an automatic trip's)."""
        state = self.risk.kill_state
        return state.engaged and state.keeps_protection

    def _account_for(self, ticket: OrderTicket, order_ref: str | None) -> Callable[[], AccountSnapshot]:
        """What builds the account ``ticket`` is measured against (``order_ref``: its own order, re-checked or
        modified; the book leaves that order out, see :func:`~tui_trader.risk.book.counted_orders`)."""
        if self.replaces_protection(ticket, order_ref):
            # Measured as it will be sent: its protection is cancelled first (send_approved), and
            # it is never placed while that still works (_why_not_placed).
            return functools.partial(self._account_without_protection, ticket.symbol)
        if order_ref is not None and self._cuts_protection(ticket, order_ref):
            return functools.partial(self._account_as_protection_counts, ticket.symbol, order_ref)
        return self.account_snapshot

    def _engine_checks(self, ticket: OrderTicket, order_ref: str | None = None) -> list[CheckResult]:
        out = []
        if self.stopping:
            out.append(CheckResult("engine_stopping", False, message="the engine is stopping"))
        if self.refusal:  # every order, an exit's and a modification's too: nothing goes to this account
            out.append(CheckResult("account_refused", False, message=f"trading refused: {self.refusal}"))
        elif self.blocks and not self._only_reduces(ticket, order_ref):
            out.append(CheckResult("entries_blocked", False, message=self.entries_blocked_reason))
        if not self.broker.is_connected and not self.config.dry_run:
            out.append(CheckResult("connected", False, message="broker not connected"))
        return out

    def _only_reduces(self, ticket: OrderTicket, order_ref: str | None = None) -> bool:
        """``ticket`` reduces its symbol's position and, with the orders working on its side, never takes
        it past flat (a resting sell of 100 under a long of 100 and a new sell of 100 would both fill:
        short 100). Measured on the account and book the risk gate measures it on (its REDUCING judgement):
        an exit that replaces the protection without it, as it will be sent; a modify (``order_ref``)
        without the order modified, at whichever ticket it is counted (the figures held or asked), nor,
        for a bracket child, its family (counted beside it, a stop moved under a long was "past flat")."""
        if not self.reduces_position(ticket):
            return False
        account = self._account_for(ticket, order_ref)()
        book = build_book(account, self.market.view(), self._in_flight_orders(), order_ref)
        return book.leg(ticket.symbol).reduces(ticket.side, ticket.quantity)

    def _in_flight_orders(self) -> tuple[Order, ...]:
        """Orders approved (or waiting for it) that the account's working orders do not show yet."""
        return tuple(self.orders.with_status(S.PENDING_APPROVAL, S.APPROVED))

    def account_snapshot(self) -> AccountSnapshot:
        """The portfolio as a frozen :class:`AccountSnapshot` with the working orders, as the risk checks count
        them: those in :attr:`counted_tickets` at the tickets there (:meth:`AccountSnapshot.with_tickets`)."""
        account = self.portfolio.snapshot(self.now(), self.account_id, tuple(self.orders.working()))
        counted = self.counted_tickets
        return account.with_tickets(counted) if counted else account  # none, but while a modify is unanswered

    @property
    def counted_tickets(self) -> dict[str, OrderTicket]:
        """Working orders the risk checks count at a ticket other than their own, by ref (none here;
        :class:`~tui_trader.engine.pending.PendingModifications`: an order with a modification the broker has not
        answered, at the larger figures of the two)."""
        return {}

    def replaces_protection(self, ticket: OrderTicket, order_ref: str | None = None) -> bool:
        """``ticket`` is a reduce-only exit of its own (not a bracket's child) not yet placed: it replaces the
        protective orders working in its symbol, which are cancelled before it is sent.

        One the broker holds already (``order_ref`` acknowledged: a modify of it) cancels nothing: grown, it works
        beside them larger, and is measured with them (a limit of 5 beside a stop of 5 under a long of 10, grown
        to 10, would sell 15 if both filled). Not grown (a price moved, a cut: the engine's own cut to a smaller
        position too), it adds nothing to what the broker holds, and is measured as before: counted beside the
        stops, a cut of an exit that oversells with them was refused, and the exit was left larger still."""
        if not ticket.reduce_only:
            return False
        order = self.orders.get(order_ref) if order_ref else None
        if order is None:
            return True
        if order.parent_ref is not None:
            return False
        return order.status not in PLACED or ticket.quantity <= self.placed_quantity(order)

    def placed_quantity(self, order: Order) -> float:
        """The quantity ``order`` is measured at as placed: its ticket's
        (:class:`~tui_trader.engine.pending.PendingModifications`: with a modification the broker has not answered,
        the smaller of the quantity it last confirmed and the one asked)."""
        return order.ticket.quantity

    def placed_ticket(self, order: Order) -> OrderTicket:
        """The ticket ``order`` is held at by the broker as placed: its own
        (:class:`~tui_trader.engine.pending.PendingModifications`: with a modification the broker has not answered,
        the one before it)."""
        return order.ticket

    @functools.cached_property
    def broker_oca_groups(self) -> dict[str, str]:
        """The OCA group the broker reports each working order in, by ref, as the last reconciliation read it
        (an adopted stop and target linked in TWS): the engine's own bracket children are linked by their entry."""
        return {}

    def oca_group(self, order: Order) -> str:
        """The OCA group ``order`` is one of (its own ref when it is linked to none): a bracket's children are
        ``oca-<entry ref>`` (:meth:`_place_family`), an adopted order is in the group the broker reports."""
        if order.parent_ref is not None:
            return f"oca-{order.parent_ref}"
        return self.broker_oca_groups.get(order.order_ref) or order.order_ref

    def _cuts_protection(self, ticket: OrderTicket, order_ref: str) -> bool:
        """``ticket`` modifies protective order ``order_ref`` (reduce-only, working at the broker) only to a smaller
        size: the same side, type and prices as the broker holds it, no larger (a cut, :mod:`~tui_trader.engine.cuts`).
        """
        order = self.orders.get(order_ref)
        if order is None or not ticket.reduce_only or order.status not in PLACED:
            return False
        held = self.placed_ticket(order)
        return (ticket.quantity <= held.quantity + 1e-9 and held.reduce_only
                and _prices(ticket) == _prices(held))

    def _account_as_protection_counts(self, symbol: str, order_ref: str) -> AccountSnapshot:
        """The account a cut of protective order ``order_ref`` is measured on: ``symbol``'s other protective orders
        counted as they can fill, each OCA group once at its largest order (one fill cancels or reduces the others),
        and those of ``order_ref``'s own group not at all (alternatives to it, not orders beside it); orders linked
        to none add up. Counted order by order, a cut of one bracket's stop under two brackets was "past flat" with
        the other's stop and target both beside it, and every cut of the two was refused. A bracket child whose entry
        still works (:meth:`waits_for_entry`) is not counted: the broker holds it inactive until its entry has filled
        in full (counted, a stop under LONG 6 could not be cut to it beside a second bracket's unfilled entry and
        stop of 5)."""
        snapshot = self.account_snapshot()
        own = self.oca_group(self.orders.orders[order_ref])
        kept: list[Order] = []
        largest: dict[str, Order] = {}
        for o in snapshot.working_orders:
            if o.symbol != symbol or not o.ticket.reduce_only:
                kept.append(o)
            elif self.waits_for_entry(o):
                continue
            elif (group := self.oca_group(o)) != own and (
                    (best := largest.get(group)) is None or o.remaining > best.remaining):
                largest[group] = o
        return replace(snapshot, working_orders=(*kept, *largest.values()))

    def waits_for_entry(self, order: Order) -> bool:
        """``order`` is a bracket child whose entry still works (:meth:`Order.held_for`): the broker holds it
        inactive until that entry has filled in full, so it protects nothing held yet and is not fitted to the
        position (:mod:`~tui_trader.engine.protection_sizes`)."""
        parent = self.orders.get(order.parent_ref) if order.parent_ref else None
        return parent is not None and parent.status.is_working

    def protection_working(self, symbol: str, order_ref: str | None = None) -> list[Order]:
        """Reduce-only orders working in ``symbol`` (its stop and target), ``order_ref`` not counted."""
        return [o for o in self.orders.working()
                if o.symbol == symbol and o.ticket.reduce_only and o.order_ref != order_ref]

    def exits_pending(self, symbol: str) -> list[Order]:
        """``symbol``'s exits not yet ended (a strategy's, the maximum holding time's, a flatten's):
        reduce-only market orders of their own, waiting for approval, on their way or working."""
        return [o for o in self.orders.with_status(*EXIT_PENDING) if o.symbol == symbol and o.ticket.reduce_only
                and o.parent_ref is None and o.ticket.order_type is OrderType.MKT]

    def exit_denied(self, ticket: OrderTicket, order_ref: str | None = None,
                    past_halt: bool = False) -> RiskVerdict | None:
        """The gate's verdict on an exit asked before its symbol's protection is cancelled; ``None`` when it
        would pass. An exit the gate denies once the stop is gone leaves the position with nothing at the
        broker: one it would deny is denied with the protection still in force."""
        verdict = self.verdict(ticket, order_ref)
        # Not connected: the protection's cancel cannot go either, and says so (nothing is cancelled).
        checks = tuple(c for c in verdict.checks if c.name != "connected")
        verdict = RiskVerdict(all(c.passed for c in checks), checks)
        return None if self._passes(verdict, ticket, past_halt) else verdict

    def _account_without_protection(self, symbol: str) -> AccountSnapshot:
        snapshot = self.account_snapshot()
        kept = tuple(o for o in snapshot.working_orders if not (o.symbol == symbol and o.ticket.reduce_only))
        return replace(snapshot, working_orders=kept)

    def _passes(self, verdict: RiskVerdict, ticket: OrderTicket, past_halt: bool) -> bool:
        if verdict.passed:
            return True
        # Only what reduces a position may pass HALTED, and only when asked to (``past_halt``: the
        # operator's confirmed flatten, a lost stop placed again while an automatic trip keeps protection).
        names = {c.name for c in verdict.failures}
        return past_halt and names <= {"trading_state"} and self.reduces_position(ticket)
