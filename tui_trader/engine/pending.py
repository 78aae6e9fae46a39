"""What the broker holds of an order while a modification of it is unanswered.

The engine takes a modification's figures as the order's from the moment it is sent
(:class:`~tui_trader.engine.amend.Amendments`), and remembers what the broker held before it until the
broker answers: its echo of the new figures confirms it; an error for the order refuses it, and the order is
put back to the figures the broker still holds, said and journaled
(:meth:`~tui_trader.engine.amend.Amendments.on_order_error`). Until then the
snapshot shows it as a :class:`PendingModification` (what the broker holds, what was asked), so that a front
end never shows figures the broker has not confirmed as its (a connection lost first leaves it so until the
reconnect's reconciliation has read the figures the broker holds), and the snapshot's account has the figures
held (:meth:`PendingModifications.account_held`): the positions' stops, and how much of each position they
cover, are the broker's. The risk checks of other orders count it at the larger figures of the two
(:func:`~tui_trader.domain.orders.larger_of`, :attr:`PendingModifications.counted_tickets`): until the broker
takes a cut, the order can still fill at the size it holds. A modify's own check, and the size a protective
cut is figured at, leave the order out or take its ticket: the figures asked.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import OrderStatus, OrderType
from tui_trader.domain.orders import Order, OrderTicket, larger_of
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.engine.reconcile import Reconciliation
from tui_trader.engine.reconcile_orders import broker_figures
from tui_trader.engine.snapshots import PendingModification

ENDED_UNANSWERED_KEPT = 100
"""Orders that ended with a modification unanswered kept for the broker's refusal of it (the oldest go first)."""


class PendingModifications(Reconciliation):
    """The modifications sent and not yet answered by the broker, and the figures it holds meanwhile."""

    # -- the broker's answer to a modify -----------------------------------------------------------

    @functools.cached_property
    def _unanswered(self) -> dict[str, _Unanswered]:
        """The orders with modifications sent that the broker has not answered, by ref."""
        return {}

    def _await_answers(self, before: list[Order], sent: list[Order]) -> None:
        """Remember, for each order just sent modified, the figures the broker holds until it answers."""
        now = asyncio.get_running_loop().time()
        for old, new in zip(before, sent, strict=True):
            held = self._unconfirmed.get(new.order_ref, old.ticket)
            pending = self._unanswered.setdefault(new.order_ref, _Unanswered(held))
            pending.sent.append(new.ticket)
            pending.sent_at = now
            self._review_pending(new.order_ref)

    async def modification_answered(self, order_ref: str, timeout_s: float) -> bool:
        """Wait for the broker's answer to ``order_ref``'s modifications sent so far (its echo, a refusal, the
        order's end, or the connection lost); ``False`` when none came within ``timeout_s``."""
        pending = self._unanswered.get(order_ref)
        if pending is None:
            return True
        try:
            await asyncio.wait_for(pending.answered.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _modifications_answered(self, order_refs: list[str], timeout_s: float) -> bool:
        """Wait for the broker's answer to the modifications of ``order_refs`` sent so far, at most until
        ``timeout_s`` after the last one of them was sent; ``False`` when one is still unanswered then."""
        waiting = [p for r in order_refs if (p := self._unanswered.get(r)) is not None]
        if not waiting:
            return True
        deadline = max(p.sent_at for p in waiting) + timeout_s
        try:
            await asyncio.wait_for(asyncio.gather(*(p.answered.wait() for p in waiting)),
                                   max(deadline - asyncio.get_running_loop().time(), 0.0))
        except TimeoutError:
            return False
        return True

    def _refuse_oldest(self, order_ref: str) -> RefusedModification | None:
        """The broker refused the oldest modification of ``order_ref`` it had not answered (IB answers the oldest
        first): it is answered, and the broker holds what it held before it; ``order_ref`` is answered when it
        was the last one. ``None`` when no modification of ``order_ref`` is unanswered."""
        pending = self._unanswered.get(order_ref) or self._ended_unanswered.get(order_ref)
        if pending is None or not pending.sent:
            return None
        refused = pending.sent.pop(0)
        if not pending.sent:
            self._ended_unanswered.pop(order_ref, None)
            self._answered(order_ref)
        return RefusedModification(refused, pending.held, newer_sent=bool(pending.sent))

    def on_order(self, report: BrokerOrderReport) -> None:
        """Also: the broker's echo of a modification's figures confirms it (and any sent before it)."""
        super().on_order(report)
        if not self._unanswered and not self._unconfirmed:
            return
        order = self.orders.match(report)
        if order is None:
            return
        if order.status.is_final:
            self._settle_unconfirmed(order.order_ref)
            self._end_unanswered(order.order_ref)
            return
        pending = self._unanswered.get(order.order_ref)
        if pending is None:
            return
        echoed = next((i for i in range(len(pending.sent) - 1, -1, -1)
                       if _echoes(pending.sent[i], report)), None)
        if echoed is not None:
            pending.held = pending.sent[echoed]
            del pending.sent[:echoed + 1]
            self._unconfirmed.pop(order.order_ref, None)  # newer figures than those the outage left unsure
            if not pending.sent:
                self._answered(order.order_ref)
            else:
                self._review_pending(order.order_ref)

    def _end_unanswered(self, order_ref: str) -> None:
        """``order_ref`` ended: its modifications are answered (their waiters go on, it shows pending no more),
        but those the broker has not answered yet are kept for its refusal of them, which comes after the end
        (IB's 104 "can't modify a filled order" after the fill): the order ended at the figures it held."""
        pending = self._unanswered.get(order_ref)
        if pending is not None and pending.sent:
            ended = self._ended_unanswered
            ended[order_ref] = pending
            while len(ended) > ENDED_UNANSWERED_KEPT:
                del ended[next(iter(ended))]
        self._answered(order_ref)

    @functools.cached_property
    def _ended_unanswered(self) -> dict[str, _Unanswered]:
        """Orders that ended with modifications the broker had not answered, by ref (oldest first): its refusal of
        them is still to come (:meth:`_end_unanswered`)."""
        return {}

    def _answered(self, order_ref: str) -> None:
        pending = self._unanswered.pop(order_ref, None)
        if pending is not None:
            pending.answered.set()
            self._review_pending(order_ref)

    def lose_touch(self) -> None:
        """Also: what the last session did not answer it never will. Its waiters go on; the orders stay shown
        pending at the figures the broker last confirmed (:attr:`_unconfirmed`) until the reconciliation after
        the connect compares the figures of every working order with the broker's."""
        super().lose_touch()
        self._ended_unanswered.clear()
        for ref, pending in list(self._unanswered.items()):
            self._unconfirmed.setdefault(ref, pending.held)
            self._answered(ref)

    @functools.cached_property
    def _unconfirmed(self) -> dict[str, OrderTicket]:
        """The orders whose modifications were unanswered when touch with the broker was lost, at the figures it
        last confirmed, by ref: the broker may hold those or the ones asked, and says which only to the
        reconciliation after the connect (:meth:`reconcile`)."""
        return {}

    async def reconcile(self, why: str, startup: bool = False,
                        before: dict[str, OrderStatus] | None = None) -> None:
        """Also: a connect's reconciliation (``before`` given) has read the figures the broker holds for every
        order it still works (:meth:`_settle_figures`) and settled the others: none is left unconfirmed."""
        await super().reconcile(why, startup, before)
        if before is not None:
            for ref in list(self._unconfirmed):
                self._settle_unconfirmed(ref)

    def _settle_figures(self, report: BrokerOrderReport, asked: dict[str, OrderTicket]) -> None:
        """Also: an order whose figures were compared with the broker's (``asked``) has the broker's now, or the
        broker holds the ones asked: no longer unconfirmed (a modify sent since is pending on its own)."""
        super()._settle_figures(report, asked)
        order = self.orders.match(report)
        if order is not None and order.order_ref in asked:
            self._settle_unconfirmed(order.order_ref)

    def _settle_unconfirmed(self, order_ref: str) -> None:
        if self._unconfirmed.pop(order_ref, None) is not None:
            self._review_pending(order_ref)

    # -- what the broker holds until it answers ----------------------------------------------------

    @functools.cached_property
    def modifications(self) -> dict[str, PendingModification]:
        """The working orders with a modification the broker has not confirmed, by ref: the snapshot's.
        Replaced when one changes, never changed in place (a snapshot handed out keeps its view)."""
        return {}

    @property
    def counted_tickets(self) -> dict[str, OrderTicket]:
        """Also: an order with a modification the broker has not answered, at the larger figures of its two
        tickets (:func:`~tui_trader.domain.orders.larger_of`): until the broker answers, it can fill at either."""
        pending = self.modifications
        return {ref: larger_of(p.held, p.asked) for ref, p in pending.items()} if pending else {}

    def placed_quantity(self, order: Order) -> float:
        """Also: an order with a modification unanswered, the smaller of the quantity the broker last confirmed
        (:attr:`PendingModification.held`) and the one asked: the broker can be left with either (a modify is
        measured against the smaller)."""
        pending = self.modifications.get(order.order_ref)
        quantity = order.ticket.quantity
        return quantity if pending is None else min(quantity, pending.held.quantity)

    def placed_ticket(self, order: Order) -> OrderTicket:
        """Also: an order with a modification unanswered, at the ticket the broker last confirmed
        (:attr:`PendingModification.held`)."""
        pending = self.modifications.get(order.order_ref)
        return order.ticket if pending is None else pending.held

    def account_held(self) -> AccountSnapshot:
        """The account as the broker holds it, for the front ends: a working order with a modification unconfirmed
        at the figures the broker still holds, and the stop and target of the position it protects with it
        (:meth:`AccountSnapshot.with_tickets`). The risk checks take :meth:`account_snapshot`: such an order at
        the larger figures of the two (:attr:`counted_tickets`)."""
        account = self.account_snapshot()
        pending = self.modifications
        return account.with_tickets({ref: p.held for ref, p in pending.items()}) if pending else account

    def _show_asked(self, before: list[Order]) -> None:
        """The orders ``before`` a modification, amended just now: pending until the broker answers, at what
        it holds (the figures before them, or before a modification of theirs it has not answered yet)."""
        for old in before:
            held = self._held(old.order_ref)
            self._show_pending(old.order_ref, held if held is not None else old.ticket)

    def _review_pending(self, order_ref: str) -> None:
        """``order_ref`` as its modifications unanswered leave it: pending at what the broker holds, or not."""
        self._show_pending(order_ref, self._held(order_ref))

    def _held(self, order_ref: str) -> OrderTicket | None:
        """What the broker holds of ``order_ref`` as last confirmed, while a modification of it is unconfirmed
        (unanswered, or left unsure by a lost connection); else ``None``."""
        pending = self._unanswered.get(order_ref)
        return pending.held if pending is not None else self._unconfirmed.get(order_ref)

    def _show_pending(self, order_ref: str, held: OrderTicket | None) -> None:
        """Show ``order_ref`` as the broker holding ``held`` while its own ticket is asked (nothing pending when
        ``held`` is ``None`` or that ticket, or the order no longer works)."""
        order = self.orders.get(order_ref)
        view = (PendingModification(held, order.ticket) if held is not None and order is not None
                and order.status.is_working and order.ticket != held else None)
        shown = self.modifications
        if shown.get(order_ref) == view:
            return
        views = {ref: v for ref, v in shown.items() if ref != order_ref}
        if view is not None:
            views[order_ref] = view
        self.modifications = views


@dataclass(frozen=True, slots=True)
class RefusedModification:
    """A modification the broker refused (:meth:`PendingModifications._refuse_oldest`)."""

    refused: OrderTicket
    """The ticket it refused."""
    held: OrderTicket
    """What the broker holds instead: the ticket before the modification refused."""
    newer_sent: bool
    """A newer modification of the order is still unanswered."""


@dataclass(slots=True)
class _Unanswered:
    """The modifications of one order sent and not yet answered by the broker."""

    held: OrderTicket
    """What the broker holds as last known: the ticket before the oldest modification unanswered."""
    sent: list[OrderTicket] = field(default_factory=list)
    """The tickets sent, oldest first."""
    sent_at: float = 0.0
    """When the last one was sent (loop time)."""
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once none is left unanswered."""


def _echoes(sent: OrderTicket, report: BrokerOrderReport) -> bool:
    """``report`` carries the figures of the modification ``sent``: its size and prices, and a trailing stop's
    stop (the adapter reports the one the broker last took; without it, any report of the order, the one
    putting it back at a refusal too, confirmed a refused change of the stop alone)."""
    stop, theirs = sent.stop_price, report.stop_price
    if sent.order_type is OrderType.TRAIL and stop is not None and theirs is not None and abs(stop - theirs) > 1e-9:
        return False
    return broker_figures(sent, report) == sent
