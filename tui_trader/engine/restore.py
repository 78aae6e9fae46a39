"""Protection an exit cancelled, placed again when the exit does not close the position.

An exit (a strategy's, the maximum holding time's, an approved one, the operator's flatten) cancels its symbol's
protective stop and target first, then sends its closing order. When that order does not close the position (the
broker rejects it, it ends cancelled or expired unfilled or partly filled, the gate denies it, or it is not sent at
all), nothing was left at the broker and nothing said so: QA held SPY LONG 10 with no order at the gateway after a
rejection for margin, the alerts pane silent for minutes. Now a CRITICAL alert says it at once, naming the position
and why, and the protection is placed again as it was (:meth:`ProtectionRestore._place_again`): its stop, and its
target in one OCA group with it, at their prices, for the position as it is now, through the order path (the gate,
the journal). Once: if that is denied or rejected too, a second CRITICAL alert says the position is unprotected and
what to do.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, TradingState
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.domain.portfolio import AccountSnapshot, held_words
from tui_trader.engine.cuts import ProtectionCuts
from tui_trader.errors import BrokerError

S = OrderStatus
_QTY_EPS = 1e-9
WHAT_TO_DO = "engage the kill switch (Ctrl+K), flatten it (f) or place a stop in TWS"
"""What the operator can do for a position left with nothing at the broker."""


@dataclass(frozen=True, slots=True)
class CancelledProtection:
    """A symbol's protective orders as they were when an exit cancelled them: the stop first, then its target."""

    symbol: str
    tickets: tuple[OrderTicket, ...]
    what: str = ""
    """The exit they were cancelled for, as the alerts name it (``flatten of AAPL``)."""

    def words(self) -> str:
        """``STP SELL @ 95.4 and LMT SELL @ 110``: the orders as the alerts name them."""
        return " and ".join(f"{t.order_type.value} {t.side.value} @ {_price(t)}" for t in self.tickets)


def _price(ticket: OrderTicket) -> str:
    if ticket.order_type is OrderType.TRAIL:
        return f"trail {ticket.trail_amount:g}" if ticket.trail_amount else f"trail {ticket.trail_percent:g}%"
    price = ticket.limit_price if ticket.order_type is OrderType.LMT else ticket.stop_price
    return f"{price:g}" if price is not None else "?"


class ProtectionRestore(ProtectionCuts):
    """Place again the protection an exit cancelled when the exit leaves the position held (see the module)."""

    @functools.cached_property
    def _cancelled_for_exit(self) -> dict[str, tuple[asyncio.Task[Any] | None, tuple[OrderTicket, ...]]]:
        """The protective tickets each symbol's exit cancelled, with the task the exit runs in (its cancel, its wait
        for their end and its send), until that exit is known (:meth:`exit_after_cancel`): its own, not another's."""
        return {}

    @functools.cached_property
    def _exits_replacing(self) -> dict[str, CancelledProtection]:
        """Exits sent (or on their way: an approved exit's send) after their symbol's protection was cancelled, by
        ref, until they end."""
        return {}

    @functools.cached_property
    def _cancel_unanswered(self) -> dict[str, tuple[CancelledProtection, str]]:
        """Protection cancelled for an exit given up as its cancel went unanswered, by symbol, with why: looked at
        once it has ended (:meth:`exit_after_cancel`)."""
        return {}

    @functools.cached_property
    def _after_halt(self) -> dict[str, CancelledProtection]:
        """Protection placed again that a trading halt denied, by symbol: placed again once more when it resumes."""
        return {}

    @functools.cached_property
    def _halt_retried(self) -> list[CancelledProtection]:
        """The protection placed again once more after a halt: denied again, it is final (not tried at every halt)."""
        return []

    @functools.cached_property
    def _placed_again(self) -> dict[str, tuple[str, CancelledProtection]]:
        """Protective orders placed again, by ref, until they end: their OCA group (``""``: none) and what for."""
        return {}

    # -- what an exit cancelled ----------------------------------------------------------------

    async def _cancel_symbols(self, symbols: set[str], source: str, alert: bool = True) -> None:
        """Also: remember the protection cancelled, to place it again if the exit does not close the position.

        An earlier exit of ``symbols`` still working is cancelled for this one (one still on its way is waited for)
        and hands it the protection it had cancelled: this exit's end decides, not that one's. That one's end, before
        this exit's closing order existed, placed the stop again, and a flatten then waited for that stop to end: not
        sent, after a spurious CRITICAL alert (or sent beside the stop, both able to fill). So does one still waiting
        for the end of the protection it cancelled: its record was dropped, or it took this exit's (shared by symbol)
        and, rejected, placed the stop again as this one went out."""
        for symbol in symbols:
            self._cancel_unanswered.pop(symbol, None)
        handed = {ref: record for ref, record in self._exits_replacing.items() if record.symbol in symbols}
        for ref in handed:
            del self._exits_replacing[ref]
        me = asyncio.current_task()
        popped = {symbol: self._cancelled_for_exit.pop(symbol) for symbol in symbols
                  if symbol in self._cancelled_for_exit}
        # What an ended exit's cancel left here is not this one's; an exit still waiting hands it over.
        waiting = {symbol: (task, tickets) for symbol, (task, tickets) in popped.items()
                   if task is not None and task is not me and not task.done()}
        earlier = {record.symbol: record.tickets for record in handed.values()}
        earlier.update((symbol, tickets) for symbol, (_, tickets) in waiting.items())
        kept = {symbol: self._protection_tickets(symbol) or earlier.get(symbol, ()) for symbol in symbols}
        try:
            await super()._cancel_symbols(symbols, source, alert)
        except BrokerError:  # this exit does not go: each earlier exit's own end decides again
            self._exits_replacing.update(handed)
            self._cancelled_for_exit.update(waiting)
            raise
        self._cancelled_for_exit.update((symbol, (me, tickets)) for symbol, tickets in kept.items() if tickets)

    def _protection_tickets(self, symbol: str) -> tuple[OrderTicket, ...]:
        """``symbol``'s protection as it works now: one OCA group's stop and target (the oldest group with a stop,
        as :meth:`_allowances` keeps it first), each at most once."""
        groups: dict[str, list[Order]] = {}
        for order in sorted(self._fitted_protection(symbol), key=lambda o: o.created_at):
            groups.setdefault(self.oca_group(order), []).append(order)
        if not groups:
            return ()
        members = min(groups.values(), key=lambda g: not any(o.ticket.order_type.is_stop for o in g))
        stop = next((o.ticket for o in members if o.ticket.order_type.is_stop), None)
        target = next((o.ticket for o in members if o.ticket.order_type is OrderType.LMT), None)
        return tuple(t for t in (stop, target) if t is not None)

    def exit_after_cancel(self, symbol: str, exit_ref: str | None, what: str, why: str = "") -> None:
        """``symbol``'s protection was cancelled for an exit, ``exit_ref`` (``None``: not sent at all, ``why``): when
        it ends without closing the position, the protection is placed again (now, if it has ended already).

        One not sent as the protection's cancel went unanswered is decided once that protection has ended: looked at
        now, it still worked and the record was dropped, so a cancel the broker confirmed later left the position
        with no stop, and nothing placed it again.

        Only its own record: one a later exit took over while this one waited (a flatten) is that exit's to decide."""
        task, tickets = self._cancelled_for_exit.get(symbol, (None, ()))
        if not tickets or task is not asyncio.current_task():
            return
        del self._cancelled_for_exit[symbol]
        record = CancelledProtection(symbol, tickets, what)
        order = self.orders.get(exit_ref) if exit_ref else None
        if order is not None and not order.status.is_final:
            self._exits_replacing[order.order_ref] = record
            return
        if order is None and self._cancelling(symbol):
            self._cancel_unanswered[symbol] = (record, why)
            return
        self._exit_ended(record, order, why)

    def _cancelling(self, symbol: str) -> list[Order]:
        """``symbol``'s protection still working whose cancel was asked."""
        return [o for o in self.protection_working(symbol) if o.order_ref in self.cancels_asked]

    async def _open_orders(self, figures: bool) -> tuple[list[BrokerOrderReport], set[str]]:
        """Also: the protection of an exit given up before the broker was asked, that the broker still works (its
        cancel lost or refused), protects its position: the record is dropped, nothing placed again nor said, and the
        orders are no longer counted as cancelled (one ending later is said as ended unasked). Kept, a cancel of the
        stop in TWS days later placed it again."""
        given_up = dict(self._cancel_unanswered)
        opened, asked = await super()._open_orders(figures)
        working = [o for r in opened if r.status is not None and r.status.is_working
                   and (o := self.orders.match(r)) is not None and o.order_ref in self.cancels_asked]
        for symbol, waiting in given_up.items():
            worked_on = [o.order_ref for o in working if o.symbol == symbol]
            if worked_on and self._cancel_unanswered.get(symbol) is waiting:
                del self._cancel_unanswered[symbol]
                self.cancels_asked.difference_update(worked_on)
        return opened, asked

    def order_updated(self, order: Order, previous: OrderStatus | None, now: datetime | None = None) -> None:
        """Also: an exit that ended after its protection was cancelled, the protection an exit given up had cancelled
        that has ended, or a protective order placed again that ended, is looked at (:meth:`_exit_ended`,
        :meth:`_again_ended`)."""
        super().order_updated(order, previous, now)
        if not order.status.is_final:
            return
        if order.symbol in self._cancel_unanswered and not self._cancelling(order.symbol):
            given_up, why = self._cancel_unanswered.pop(order.symbol)
            self._exit_ended(given_up, None, why)
        if (record := self._exits_replacing.pop(order.order_ref, None)) is not None:
            self._exit_ended(record, order)
        if (placed := self._placed_again.pop(order.order_ref, None)) is not None:
            self._again_ended(order, placed[1])

    # -- the exit ended -------------------------------------------------------------------------

    def _exit_ended(self, record: CancelledProtection, order: Order | None, why: str = "") -> None:
        """The exit ``record`` cancelled the protection for has ended (``order``; ``None``: never sent, ``why``):
        if the position is still held with nothing at the broker, say it and place the protection again (not while
        trading is refused for the account, nor halted but by a trip that keeps protection: said why)."""
        if (order is not None and order.status is S.FILLED) or self.stopping:
            return
        symbol, held = record.symbol, self.portfolio.quantity(record.symbol)
        # The exit's fills may be booked after its last status: never more than it left unfilled.
        size = abs(held) if order is None else min(abs(held), order.remaining)
        if size <= _QTY_EPS or record.tickets[0].side.sign * held > 0:
            return
        others = [o for o in self.exits_pending(symbol)
                  if o.status.is_working and (order is None or o.order_ref != order.order_ref)]
        if others:  # another exit works at the broker: a stop beside it could fill with it; its end decides
            # Asked before the protection working, which counts a working exit (reduce-only) too: asked after, the
            # record was dropped, and that exit failing as well left the position bare with nothing said. One
            # awaiting approval protects nothing (approved, it cancels the protection itself before it is sent):
            # handed to it, the position had no stop for as long as the approval waited, and nothing said so.
            self._exits_replacing[others[0].order_ref] = record
            return
        if self.protection_working(symbol):
            return
        ended = f"{order.status.value} ({order.history[-1].note if order.history else ''})" if order else "not sent"
        text = (f"{record.what} {ended}{f' ({why})' if why else ''}: {held_words(symbol, held)} has no stop at the "
                "broker (its protective orders were cancelled for the exit)")
        if order is not None and order.order_ref in self.flattens_unsaid:  # its outcome is recorded with this said
            self.flattens_unsaid[order.order_ref] = True
        if self.refusal:  # nothing goes to this account: not the protection, nor the kill's cancels or a flatten
            self.alert(AlertLevel.CRITICAL, "close_position", f"{text}; not placed again: trading refused: "
                       f"{self.refusal}; place a stop in TWS", kind="exit_unprotected")
            return
        if self.trading_state is TradingState.HALTED and not self._keeps_protection:
            self.alert(AlertLevel.CRITICAL, "close_position", f"{text}; not placed again while the kill switch holds "
                       f"trading halted: {WHAT_TO_DO}", kind="exit_unprotected")
            return
        self.alert(AlertLevel.CRITICAL, "close_position", f"{text}; placing it again for {size:g}: "
                   f"{record.words()}", kind="exit_unprotected")
        self.spawn(self._place_again(record, size), f"protect-again-{symbol}")

    async def _place_again(self, record: CancelledProtection, size: float) -> None:
        """Place ``record``'s stop, then its target in one OCA group with it, for ``size``: each through the gate
        and the journal, as the bracket's were approved with it. The target only once the stop is on its way (two
        orders not linked could both fill; checked beside it, it is measured with its group counted once)."""
        stop, *rest = record.tickets
        first = self._create_again(stop, size, record)
        group = f"oca-{first.order_ref}" if rest else ""
        self._placed_again[first.order_ref] = (group, record)
        await self.send(first.order_ref, past_halt=self._keeps_protection)
        if not self.orders.orders[first.order_ref].status.is_working:
            return  # said as it ended (:meth:`_again_ended`)
        for ticket in rest:
            held = self.portfolio.quantity(record.symbol)
            if not held or ticket.side.sign * held > 0:
                return
            order = self._create_again(ticket, min(size, abs(held)), record)
            self._placed_again[order.order_ref] = (group, record)
            await self.send(order.order_ref, past_halt=self._keeps_protection)

    def _create_again(self, ticket: OrderTicket, size: float, record: CancelledProtection) -> Order:
        reason = f"{ticket.reason or 'protection'}, placed again: {record.what} did not close the position"
        again = replace(ticket, quantity=size, created_at=self.now(), reason=reason)
        order = self.orders.create(again, S.APPROVED, self.now(), note="approved as the protection it places again was")
        self.publish_order(order)
        return order

    def _again_ended(self, order: Order, record: CancelledProtection) -> None:
        """A protective order placed again ended: denied, not sent or rejected (never acknowledged by the broker),
        the position is left unprotected: said, and not tried again."""
        acknowledged = any(h.status in (S.SUBMITTED, S.PARTIALLY_FILLED) for h in order.history)
        if order.status is S.FILLED or (acknowledged and order.status is not S.REJECTED):
            return
        held = self.portfolio.quantity(order.symbol)
        if not held or self.protection_working(order.symbol):
            return
        note = order.history[-1].note if order.history else order.status.value
        quote = self.market.quotes.get(order.symbol)
        later = "not tried again"
        if quote is not None and quote.halted and not any(r is record for r in self._halt_retried):
            # A halt denies every order of the symbol: the stop goes again when it resumes (once), not never.
            self._after_halt[order.symbol] = record
            later = f"placed again when {order.symbol} resumes; meanwhile"
        self.alert(AlertLevel.CRITICAL, "protection", f"{order.order_ref} ({order.ticket.order_type.value} "
                   f"{order.ticket.side.value} {order.ticket.quantity:g} {order.symbol}), placed again after "
                   f"{record.what}, {order.status.value} ({note}): {held_words(order.symbol, held)} is UNPROTECTED, "
                   f"no stop at the broker; {later}: {WHAT_TO_DO}", kind="exit_unprotected")

    def on_halt_over(self, symbol: str) -> None:
        """Also: the protection a halt denied is placed again, once, if the position is still held with nothing at
        the broker (:meth:`_again_ended`)."""
        super().on_halt_over(symbol)
        record = self._after_halt.pop(symbol, None)
        if record is None or self.stopping:
            return
        self._halt_retried[:] = [*self._halt_retried[-9:], record]  # the last few: a record is one exit's
        held = self.portfolio.quantity(symbol)
        if not held or record.tickets[0].side.sign * held > 0 or self.protection_working(symbol):
            return
        self.alert(AlertLevel.WARNING, "protection", f"{symbol} resumed: placing the protection of "
                   f"{held_words(symbol, held)} again: {record.words()}", kind="protection_again")
        self.spawn(self._place_again(record, abs(held)), f"protect-again-{symbol}")

    # -- placed again: one OCA group, measured as protection -------------------------------------

    def replaces_protection(self, ticket: OrderTicket, order_ref: str | None = None) -> bool:
        """Also: protection placed again is protection, not an exit that replaces it."""
        return order_ref not in self._placed_again and super().replaces_protection(ticket, order_ref)

    def _account_for(self, ticket: OrderTicket, order_ref: str | None) -> Callable[[], AccountSnapshot]:
        """Also: protection placed again is measured as a cut is, its own OCA group not counted beside it."""
        if order_ref in self._placed_again:
            return functools.partial(self._account_as_protection_counts, ticket.symbol, order_ref)
        return super()._account_for(ticket, order_ref)

    def oca_group(self, order: Order) -> str:
        """Also: protection placed again is in the group it was placed with."""
        placed = self._placed_again.get(order.order_ref)
        return placed[0] if placed and placed[0] else super().oca_group(order)

    def _held_oca_group(self, order: Order) -> str:
        """Also: protection placed again is held in the group it was placed with (a modify names it again)."""
        placed = self._placed_again.get(order.order_ref)
        return placed[0] if placed and placed[0] else super()._held_oca_group(order)

    def _place_family(self, order_ref: str) -> None:
        """Also: protection placed again goes in its OCA group."""
        placed = self._placed_again.get(order_ref)
        if placed is None or not placed[0]:
            super()._place_family(order_ref)
            return
        broker_id = self.broker.next_order_id()
        self.orders.bind(order_ref, broker_id)
        self.broker.place(self.orders.orders[order_ref], broker_id, oca_group=placed[0])
