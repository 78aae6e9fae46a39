"""A protective order lost placed again or said; a position's stop and target kept to its protective orders.

A bracket entry cancelled (or ended without being asked) after part of it filled takes its stop and
target with it at the broker: its stop is placed again for the part held (:meth:`Protection._stop_lost`).
A protective order that ended without tui-trader asking and left its position with nothing at the
broker is said (:meth:`Protection._say_if_unprotected`). Every change of a protective order moves its
position's stop and target (:meth:`Protection._record_protection`).

Protective orders are cut to a smaller position by :class:`~tui_trader.engine.cuts.ProtectionCuts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from tui_trader.broker.base import Broker
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.market import Quote
from tui_trader.domain.portfolio import protection
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.core import Clock
from tui_trader.engine.restore import ProtectionRestore
from tui_trader.engine.trailing import TrailMark, TrailMarks
from tui_trader.risk.kill_cancels import KillCancels

if TYPE_CHECKING:
    from tui_trader.domain.orders import Order

S = OrderStatus


class Protection(ProtectionRestore):
    """Place a lost stop again; say a position left with no protection at the broker; keep a position's stop
    and target to its protective orders (its protective orders fitted to it: :class:`ProtectionCuts`).

    Args:
        config: What to trade and how.
        broker: The broker connection.
        clock: Injected clock; the wall clock by default.
    """

    def __init__(self, config: EngineConfig, broker: Broker, clock: Clock | None = None) -> None:
        super().__init__(config, broker, clock)
        self._entries_cancelled: set[str] = set()
        """Bracket entries the operator cancelled: a part filled before keeps a stop (:meth:`_stop_lost`)."""
        self._unprotected_said: set[str] = set()
        """Symbols whose position was said to have no protective order left (:meth:`_say_if_unprotected`)."""
        self._trail_marks = TrailMarks()
        """Where the bracket trailing stops whose entry filled may stand at the broker (:meth:`_stop_lost`)."""

    # -- hooks ---------------------------------------------------------------------------------

    async def open_journal(self) -> None:
        """Also: every position restored takes the stop and target of its protective orders restored with it.

        Orders restored unchanged from the journal make no fill, status change or adopted book, which
        are what move a position's protection otherwise: after a restart the positions pane showed no
        stop for a position whose stop worked at the broker. Done before the connect, so the first
        snapshot is right; the reconciliation's changes move them on from here.
        """
        await super().open_journal()
        for symbol in self.portfolio.open_positions():
            self._record_protection(symbol)

    def after_fill(self, order_ref: str, flat_after: bool) -> None:
        """Also: move the position's stop and target; a bracket entry's fill has its trailing stops followed
        (:meth:`_mark_trails`), and one heard after its cancel was answered places its stop again
        (:meth:`_stop_lost`)."""
        super().after_fill(order_ref, flat_after)
        order = self.orders.orders[order_ref]
        self._record_protection(order.symbol)
        entry = order.parent_ref or order.order_ref
        if order.parent_ref is None:
            self._mark_trails(order)
        if entry in self._entries_cancelled and order.status.is_final:  # a fill heard after the cancel's answer
            self._stop_lost(entry)

    def quote_hook(self, quote: Quote) -> None:
        """Also: trail the marks of the bracket trailing stops working in the symbol (:meth:`_stop_lost`)."""
        super().quote_hook(quote)
        self._trail_marks.see(quote)

    def after_figures_taken(self, order_ref: str) -> None:
        """Also: the position takes the stop and target of its protective orders as taken."""
        super().after_figures_taken(order_ref)
        order = self.orders.get(order_ref)
        if order is not None:
            self._record_protection(order.symbol)

    def after_book_taken(self, symbols: Iterable[str]) -> None:
        """Also: the positions take the stop and target of their protective orders (one adopted from the broker
        before the book was seeded from it)."""
        super().after_book_taken(symbols)
        for symbol in symbols:
            self._record_protection(symbol)

    # -- protection lost ----------------------------------------------------------------------

    def order_updated(self, order: Order, previous: OrderStatus | None, now: datetime | None = None) -> None:
        """Publish the update; a protective order's change (sent, modified, cancelled, rejected,
        expired, filled) also moves its position's stop and target, so the positions pane never
        shows a stop in force that the broker no longer holds (a kill cancels them, say). One that
        ended without tui-trader asking may leave its position with nothing at the broker: said
        (:meth:`_say_if_unprotected`)."""
        super().order_updated(order, previous, now)
        if order.ticket.reduce_only and self.portfolio.holds(order.symbol):
            self._record_protection(order.symbol)
        if (order.status in (S.CANCELLED, S.EXPIRED) and previous is not None and previous.is_working
                and order.order_ref not in self.cancels_asked):
            self._ended_unasked(order)
        if order.status.is_final:
            self.cancels_asked.discard(order.order_ref)
        if order.parent_ref is not None and order.ticket.order_type is OrderType.TRAIL:
            self._follow_trail(order)
        entry = order.parent_ref or order.order_ref
        if entry in self._entries_cancelled and order.status.is_final:
            self._stop_lost(entry)
        if order.status.is_final and entry not in self._entries_cancelled and self._bracket_ended(entry):
            self._trail_marks.drop([c.order_ref for c in self.orders.children(entry)])

    def _mark_trails(self, entry: Order) -> None:
        """A bracket entry's fill: its working trailing stops are followed from now on (the broker may trail them
        from its first fill), for a stop placed again if the broker cancels them with the entry."""
        for child in self.orders.children(entry.order_ref):
            if (child.ticket.order_type is OrderType.TRAIL and child.status.is_working
                    and child.order_ref not in self._trail_marks):
                instrument = self.market.instruments.get(entry.symbol)
                mark = TrailMark.of(child.ticket, instrument.min_tick if instrument else 0.01)
                self._trail_marks.start(entry.symbol, child.order_ref, mark, self.market.quotes.get(entry.symbol))

    def _follow_trail(self, order: Order) -> None:
        """A bracket trailing stop changed: one ended is no longer trailed; a stop set anew restarts its mark."""
        if order.status.is_final:
            self._trail_marks.end(order.symbol, order.order_ref)
        else:
            self._trail_marks.set(order.symbol, order.order_ref, order.ticket.stop_price,
                                  self.market.quotes.get(order.symbol))

    def _bracket_ended(self, entry_ref: str) -> bool:
        """The bracket of ``entry_ref`` ended, every order of it."""
        family = self.family(entry_ref)
        return bool(family) and all(o.status.is_final for o in family)

    async def cancel(self, order_ref: str) -> None:
        """Cancel one order (a bracket entry's part already filled keeps a stop: :meth:`_stop_lost`)."""
        order = self.orders.get(order_ref)
        if order is not None and order.status.is_working and self.orders.children(order_ref):
            self._entries_cancelled.add(order_ref)
        await super().cancel(order_ref)

    def _send_cancels(self, cancels: KillCancels) -> None:
        """The kill's cancels; an automatic trip's (``keeps_protection``) that cancels a bracket entry with
        a part filled places its stop again for that part (:meth:`_stop_lost`): the broker cancels the
        bracket's stop with its entry, and the trip keeps every other position's protection."""
        super()._send_cancels(cancels)
        if cancels.keeps_protection:
            self._entries_cancelled.update(r for r in cancels.refs if self.orders.children(r))

    def _stop_lost(self, entry_ref: str) -> None:
        """A bracket entry the operator cancelled after part of it filled: the broker cancels its stop and
        target with it, and the part held would be left with nothing at the broker. Once the entry and
        its children have ended, a stop of the bracket's for the part held is placed again (approved
        with the bracket; the target is not, as two orders not linked could both fill). Not while the
        operator's kill holds trading HALTED (it cancels protection on purpose); an automatic trip keeps
        the positions' protection, so this stop is placed for it too (:meth:`_send_cancels`).

        An entry that ended with nothing filled is kept: a fill made before the cancel may be heard only
        later (made in an outage, then cancelled, its execution fetched by the reconciliation after the
        reconnect, which the cancel's answer can beat), and :meth:`after_fill` asks again then."""
        family = self.family(entry_ref)
        if not family or any(not o.status.is_final for o in family) or not family[0].filled_quantity:
            return
        self._entries_cancelled.discard(entry_ref)
        entry, children = family[0], family[1:]
        held = self.protected_position(entry.symbol)  # under a mismatch followed, what the broker holds
        stop = next((c for c in children if c.ticket.stop_price or c.ticket.order_type is OrderType.TRAIL), None)
        halted = self.trading_state is TradingState.HALTED
        if (stop is None or entry.ticket.side.sign * held <= 0
                or self.protection_working(entry.symbol) or (halted and not self._keeps_protection)):
            return
        start = self._trailed_start(stop)
        ticket = replace(stop.ticket, quantity=min(entry.filled_quantity, abs(held)), stop_price=start,
                         created_at=self.now(),
                         reason=f"protective stop of {entry_ref}, placed again for the part filled")
        order = self.orders.create(ticket, OrderStatus.APPROVED, self.now(), note="approved with its bracket")
        self.publish_order(order)
        trailed = (f"; its trailing stop starts at {start:g}, where the prices seen since the fill trailed it from "
                   f"{stop.ticket.stop_price:g}" if start != stop.ticket.stop_price and start is not None
                   and stop.ticket.stop_price is not None else "")
        self.alert(AlertLevel.WARNING, "protection", f"{entry_ref} was cancelled with {entry.filled_quantity:g} of "
                   f"{entry.ticket.quantity:g} filled; the broker cancelled its stop with it: placed again for "
                   f"{ticket.quantity:g} {entry.symbol} as {order.order_ref}{trailed}", kind="protection_replaced")
        self.spawn(self._send_lost_stop(order.order_ref, held), f"stop-{order.order_ref}")

    def _trailed_start(self, stop: Order) -> float | None:
        """Where a bracket stop placed again starts: a stop's own; a trailing stop's as IB may have trailed the
        one cancelled on the prices seen since the entry's first fill (:mod:`~tui_trader.engine.trailing`), never
        looser than its ticket's."""
        mark = self._trail_marks.take(stop.order_ref)
        own = stop.ticket.stop_price
        if mark is None or mark.stop is None or stop.ticket.order_type is not OrderType.TRAIL:
            return own
        if own is None:
            return mark.stop
        return max(own, mark.stop) if stop.ticket.side is Side.SELL else min(own, mark.stop)

    async def _send_lost_stop(self, order_ref: str, held: float) -> None:
        await self.send(order_ref, past_halt=self._keeps_protection)  # an automatic trip keeps protection
        order = self.orders.orders[order_ref]
        if not order.status.is_working and order.status is not OrderStatus.FILLED:
            self.alert(AlertLevel.CRITICAL, "protection", f"{order_ref} not placed ({order.status.value}: "
                       f"{order.history[-1].note}): {order.symbol} {held:g} has no stop at the broker",
                       kind="protection_replaced")

    def _ended_unasked(self, order: Order) -> None:
        """An order ended without tui-trader asking: a protective one may leave its position with nothing
        at the broker (:meth:`_say_if_unprotected`); a bracket entry with a part filled (a DAY entry expired
        at the close) took its stop and target with it, so its stop is placed again for that part, as for
        an entry the operator cancels (:meth:`_stop_lost`). Not for one a reconciliation settles: the position
        it would size that stop from may not be the broker's yet (the executions and the book come after the
        orders); the warning says the position is left without protection instead."""
        if order.ticket.reduce_only:
            self.call_later(self.config.ack_timeout_s, self._say_if_unprotected, order.order_ref,
                            name=f"protection-{order.order_ref}")
        elif (order.filled_quantity and order.parent_ref is None and self.orders.children(order.order_ref)
              and self.book_settled and not self._reconciling):
            self._entries_cancelled.add(order.order_ref)

    def _say_if_unprotected(self, order_ref: str) -> None:
        """A protective order ended without tui-trader asking (expired, cancelled at the broker's side, found
        gone after an absence): a warning if its position is still held with nothing at the broker.

        Looked at an acknowledgement timeout after it ended: an OCA sibling's fill (the position flat) or a
        stop placed again (:meth:`_stop_lost`) may come right after it. Not while halted (a kill cancels
        protection on purpose, and says so) nor before the book is settled with the broker at start.
        """
        order = self.orders.get(order_ref)
        if order is None or self.stopping or self.trading_state is TradingState.HALTED:
            return
        if not self.book_settled:
            self.call_later(self.config.ack_timeout_s, self._say_if_unprotected, order_ref,
                            name=f"protection-{order_ref}")
            return
        symbol, held = order.symbol, self.portfolio.quantity(order.symbol)
        if (not held or order.ticket.side.sign * held > 0 or symbol in self._unprotected_said
                or self.protection_working(symbol) or self.exits_pending(symbol)):
            return
        self._unprotected_said.add(symbol)
        note = order.history[-1].note if order.history else ""
        self.alert(AlertLevel.WARNING, "protection", f"{symbol} {held:g} has no protective order at the broker: "
                   f"{order_ref} ({order.ticket.order_type.value} {order.ticket.side.value}) ended "
                   f"{order.status.value}{f' ({note})' if note else ''} and nothing replaces it",
                   kind="protection_lost")

    def _record_protection(self, symbol: str) -> None:
        """``symbol``'s position takes the stop and target of its working protective orders, at their tickets:
        a modification's figures once it is sent (the snapshot shows the ones the broker holds until it
        confirms them: :meth:`account_held`)."""
        stops = self.protection_working(symbol)
        if stops or not self.portfolio.holds(symbol):
            self._unprotected_said.discard(symbol)
        self.portfolio.set_protection(symbol, *protection(stops, symbol, self.portfolio.quantity(symbol)))
