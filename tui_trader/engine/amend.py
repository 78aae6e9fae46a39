"""Changing orders after they were sent: resubmit (never blindly) and modify by id.

A resubmit is only for an ambiguous submit (no acknowledgement: SENDING past its deadline, or
UNKNOWN). Before anything goes out again the broker is asked whether it already has that
orderRef — open orders, completed orders and executions — and if it has, the order is adopted
from the broker and nothing is sent. Only an order the broker provably lacks is placed again,
under the same orderRef, after a fresh risk check and journal write.

A modify re-places a working order under its own broker id with a new quantity, limit or stop
price; the changed ticket passes the risk engine first (excluding the order's own old size)
and is journaled before it is sent. A bracket entry's stop and target follow its new quantity in
the same amendment; a protective child never grows past its entry or the position.

The engine takes a modification's figures as the order's from the moment it is sent, and remembers
what the broker held before it until the broker answers: its echo of the new figures confirms it; an
error for the order refuses it, and the order is put back to the figures the broker still holds, said
and journaled. Until then the snapshot shows it as a :class:`PendingModification` (what the broker
holds, what was asked), so that a front end never shows figures the broker has not confirmed as its (a connection
lost first leaves it so until the reconnect's reconciliation has read the figures the broker holds), and
the snapshot's account has the figures held (:meth:`Amendments.account_held`): the positions' stops, and
how much of each position they cover, are the broker's. The risk checks of other orders count it at the
larger figures of the two (:func:`~tui_trader.domain.orders.larger_of`, :attr:`Amendments.counted_tickets`):
until the broker takes a cut, the order can still fill at the size it holds. A modify's own check, and the
size a protective cut is figured at, leave the order out or take its ticket: the figures asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from tui_trader.broker.base import BrokerError, BrokerOrderReport
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType
from tui_trader.domain.events import OrderChecked, OrderDenied
from tui_trader.domain.orders import (
    MODIFY_NOTE,
    NOT_SENT_NOTE,
    REFUSED_NOTE,
    RESIZED_NOTE,
    Fill,
    Order,
    OrderTicket,
    larger_of,
)
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.adopted import not_resendable
from tui_trader.engine.reconcile import Reconciliation, broker_figures
from tui_trader.engine.snapshots import PendingModification
from tui_trader.errors import SafetyError, UnknownOrderError

log = logging.getLogger(__name__)
S = OrderStatus
_AMBIGUOUS = frozenset({S.SENDING, S.UNKNOWN})
_LOOKBACK = timedelta(minutes=5)
_NOT_REFUSALS = frozenset({202, 10147, 10148, 161, 399, 404})
"""Order errors that do not refuse a modification: a cancellation (the order's end, heard as such), a cancel's
race, IB's notices on an order it placed (399 "order message", 404 shares to short being located)."""
_STILL_PROCESSING = 2102
"""IB's "unable to modify this order as it is still being processed": the one refusal among its 21xx notices."""
TRANSIENT_REFUSALS = frozenset({_STILL_PROCESSING, 100})
"""Refusals of a modification that say nothing against it, only against its moment: IB still processing the
order (2102), the gateway's message rate exceeded (100, "max rate of messages per second"). The same
modification sent again a little later can pass (a protective cut is: :meth:`Amendments.claims_refusal`)."""


class Amendments(Reconciliation):
    """Resubmit after an ambiguous submit; modify a working order by id."""

    # -- resubmit --------------------------------------------------------------------------------

    async def resubmit(self, order_ref: str) -> Order:
        """Resend an order whose submit is ambiguous, unless the broker already has it.

        Raises:
            UnknownOrderError: No such order (a ``KeyError``).
            SafetyError: The order (or one of its bracket) is not in an ambiguous state, or cannot be sent as it
                was (adopted from the broker with a type or time in force not modelled).
        """
        if self.orders.get(order_ref) is None:
            raise UnknownOrderError(f"no order {order_ref} (it ended and was let go, or never was)")
        family = self.family(order_ref)
        if any(o.status not in _AMBIGUOUS for o in family):
            raise SafetyError(f"{order_ref} is not awaiting an acknowledgement: nothing to resubmit", "Refused")
        reports, fills = await self.find_at_broker(family)
        if reports or fills:
            self._adopt_found(order_ref, reports, fills)
        else:
            _refuse_unresendable(family, "resubmitted")
            self.alert(AlertLevel.WARNING, "orders", f"{order_ref} not found at the broker (open, completed, "
                       "executions): resubmitting under the same orderRef", kind="order_resubmitted")
            refs = {o.order_ref for o in family}
            if not [o for o in self.orders.with_status(S.UNKNOWN) if o.order_ref not in refs]:
                self.unblock("unknown_orders")  # the broker just answered for the only unknown orders
            await self.send(order_ref)
        return self.orders.orders[order_ref]

    async def find_at_broker(self, family: list[Order]) -> tuple[list[BrokerOrderReport], list[Fill]]:
        """Every broker record of these orders' refs: open and completed orders, executions."""
        refs = {o.order_ref for o in family}
        since = min(o.created_at for o in family) - _LOOKBACK
        opened = await self.broker.open_orders()
        completed = await self.broker.completed_orders()
        executions = await self.broker.executions(since)
        reports = [r for r in (*opened, *completed) if r.order_ref in refs]
        return reports, [f for f in executions if f.order_ref in refs]

    def _adopt_found(self, order_ref: str, reports: list[BrokerOrderReport], fills: list[Fill]) -> None:
        for report in reports:
            self._settle_report(report)
        for fill in sorted(fills, key=lambda f: f.time):
            self.on_fill(fill)
        order = self.orders.orders[order_ref]
        self.alert(AlertLevel.WARNING, "orders", f"{order_ref} is already at the broker ({order.status.value}): "
                   "adopted, not resent", kind="order_found")
        self.after_order_change(order_ref)

    # -- modify ----------------------------------------------------------------------------------

    async def modify(self, order_ref: str, quantity: float | None = None, limit_price: float | None = None,
                     stop_price: float | None = None) -> RiskVerdict:
        """Re-place a working order under its broker id with new figures, after a risk check.

        A bracket entry's new quantity resizes its working stop and target in the same amendment
        (see :meth:`_send_amended`); a protective child may not grow past its entry nor the
        position it protects.

        Modifies of one order take turns, in the order they were asked for (the operator's, the
        protective cuts' of :class:`~tui_trader.engine.protection.Protection`): each is checked against the
        order as the one before it left it, and is on the wire before the next one starts. Each
        waits for the journal between its amendment and its send; two at once finished those waits
        in either order, so an older amendment could reach the broker last, the broker holding
        it while the engine showed the newer one.

        Returns the verdict; a denial is published as :class:`OrderDenied` and nothing is sent.

        Raises:
            UnknownOrderError: No such order (a ``KeyError``).
            SafetyError: Live trading is not armed; a dry run; the order is not working and acknowledged; an
                order adopted from the broker that cannot be re-sent as it is held there (a type or time in force
                not modelled); a quantity not above what has filled; a bracket child that cannot follow its entry;
                a protective child larger than its entry or the position.
            ValueError: Nothing to change.
        """
        async with self._modify_turn(order_ref):
            return await self._modify(order_ref, quantity, limit_price, stop_price)

    @contextlib.asynccontextmanager
    async def _modify_turn(self, order_ref: str) -> AsyncIterator[None]:
        """Wait for the modifies of ``order_ref`` asked before this one (first come, first served)."""
        turns = self._modify_turns.setdefault(order_ref, _Turns())
        turns.waiting += 1
        if turns.waiting > 1:
            log.info("%s: modify waits for the %d asked before it", order_ref, turns.waiting - 1)
        try:
            async with turns.lock:
                await self._previous_answered(order_ref)
                yield
        finally:
            turns.waiting -= 1
            if not turns.waiting:
                del self._modify_turns[order_ref]

    @functools.cached_property
    def _modify_turns(self) -> dict[str, _Turns]:
        """The orders with a modify under way or waiting, by ref."""
        return {}

    async def _modify(self, order_ref: str, quantity: float | None, limit_price: float | None,
                      stop_price: float | None) -> RiskVerdict:
        self.require_armed()  # a modification reaches the market as an approval does
        if self.config.dry_run:  # orders go nowhere; an order adopted from the broker stays as it is there
            raise SafetyError("dry run: a modification is not sent (the order at the broker is unchanged)")
        order = self.orders.get(order_ref)
        if order is None:
            raise UnknownOrderError(f"no order {order_ref} (it ended and was let go, or never was)")
        _refuse_unresendable([order], "modified")
        ticket = replace(order.ticket, **_changes(order, quantity, limit_price, stop_price))
        children = self._children_to_resize(order, ticket.quantity)
        self._refuse_oversized_child(order, ticket.quantity)
        verdict = self.verdict(ticket, order_ref)
        if not verdict.passed:
            self.publish(OrderDenied(self.now(), ticket, verdict, order_ref))
            return verdict
        note = f"{MODIFY_NOTE}: {ticket.quantity:g} lmt={ticket.limit_price} stp={ticket.stop_price}"
        amended = self._amend(order, ticket, note)
        self.publish(OrderChecked(self.now(), order_ref, verdict, "modify"))  # the trace shows the new checks
        resized = [self._amend(c, replace(c.ticket, quantity=ticket.quantity), f"{RESIZED_NOTE} {order_ref}: "
                               f"{ticket.quantity:g}") for c in children]
        self._show_asked([order, *children])
        if not await self._flush_journal():
            self._unamend([order, *children], "journal write failed")
            return RiskVerdict(False, (CheckResult("journal", False, message="journal write failed: not sent"),))
        # The journal's wait let the world move: the order may have ended, the kill switch engaged, the
        # quote run through the collar. Checked again right before the wire, as every order is.
        current = self.orders.orders[order_ref]
        if not current.modifiable:
            self._unamend([order, *children], f"it became {current.status.value}")
            raise SafetyError(f"{order_ref} became {current.status.value} while its modification was journaled: "
                              "not sent (the order at the broker is as it was)", "Refused")
        verdict = self.verdict(ticket, order_ref)
        if not verdict.passed:
            self._unamend([order, *children], f"risk: {verdict.reason}")
            self.publish(OrderDenied(self.now(), ticket, verdict, order_ref))
            return verdict
        self._send_amended(amended, resized, shrinking=ticket.quantity < order.ticket.quantity)
        self._await_answers([order, *children], [amended, *resized])
        self.messages_sent("modify", 1 + len(resized), order_ref, ticket)
        return verdict

    def _unamend(self, before: list[Order], why: str) -> None:
        """A modification that was not sent: each order back to its ticket ``before`` it (what the broker
        still holds), so that the engine never shows figures the broker was not sent."""
        for old in before:
            current = self.orders.get(old.order_ref)
            if current is not None:
                self._amend(current, old.ticket, f"{NOT_SENT_NOTE} ({why}): as before")
            self._review_pending(old.order_ref)

    def _amend(self, order: Order, ticket: OrderTicket, note: str) -> Order:
        amended = self.orders.amend(order.order_ref, ticket, self.now(), note)
        self.publish_order(amended, order)
        return amended

    def _send_amended(self, order: Order, children: list[Order], shrinking: bool) -> None:
        """Place the amended order and its resized children so that the children never exceed
        what the entry can still fill.

        IB holds a bracket's children inactive until the entry fills, then works them at their own
        size: a stop larger than the fill would sell through the position into a short. Shrinking,
        the children go first; growing, the entry does. A fill that lands between the two
        messages then leaves the children smaller than the position for a moment, never larger.
        """
        for o in ([*children, order] if shrinking else [order, *children]):
            parent_id, oca = self._links(o)
            self.broker.place(o, o.broker_id or 0, parent_id=parent_id, oca_group=oca)

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

    async def _previous_answered(self, order_ref: str) -> None:
        """Wait for the broker's answer to the modifications of ``order_ref`` and its exits still unanswered,
        at most until the ack timeout of the last one sent.

        IB refuses to modify an order while it processes the last modification (2102): sent at once,
        the second was refused. And a refusal puts the order back to the figures the broker kept,
        which the next modify is checked against.
        """
        refs = [order_ref, *(c.order_ref for c in self.orders.children(order_ref))]
        waiting = [p for r in refs if (p := self._unanswered.get(r)) is not None]
        if not waiting:
            return
        deadline = max(p.sent_at for p in waiting) + self.config.ack_timeout_s
        try:
            await asyncio.wait_for(asyncio.gather(*(p.answered.wait() for p in waiting)),
                                   max(deadline - asyncio.get_running_loop().time(), 0.0))
        except TimeoutError:
            log.warning("%s: modification unanswered after %gs; the next one goes", order_ref,
                        self.config.ack_timeout_s)

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

    def on_order(self, report: BrokerOrderReport) -> None:
        """Also: the broker's echo of a modification's figures confirms it (and any sent before it)."""
        super().on_order(report)
        if not self._unanswered and not self._unconfirmed:
            return
        order = self.orders.match(report)
        if order is not None and order.status.is_final:
            self._settle_unconfirmed(order.order_ref)
        pending = self._unanswered.get(order.order_ref) if order is not None else None
        if order is None or pending is None:
            return
        if order.status.is_final:
            self._answered(order.order_ref)
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

    def on_order_error(self, error: BrokerError) -> None:
        """Also: an error for an order with a modification unanswered is the broker refusing it (IB answers
        the oldest first). The order works on at the figures it had: shown at them again, unless a newer
        modification is still on its way, said (CRITICAL for a protective order left larger than what it
        protects) and journaled; a reconciliation checks the order is still working."""
        pending = self._unanswered.get(error.order_ref)
        if pending is None or not pending.sent or not _refuses_modify(error.code):
            super().on_order_error(error)
            return
        refused = pending.sent.pop(0)
        order = self.orders.get(error.order_ref)
        if not pending.sent:
            self._answered(error.order_ref)
            if order is not None and order.status.is_working and order.ticket != pending.held:
                self._amend(order, pending.held, f"{REFUSED_NOTE} ({error.code}): as before")
        super().on_order_error(error)
        self._review_pending(error.order_ref)
        if order is not None:
            if pending.sent or not self.claims_refusal(error, refused):
                self._say_refused(error, refused, pending.held)
            else:
                log.info("%s: modification refused (%d: %s), left to its sender", error.order_ref, error.code,
                         error.message)
            self.after_figures_taken(error.order_ref)
        self.request_reconcile(f"{error.order_ref}: modification refused ({error.code})")

    def claims_refusal(self, error: BrokerError, refused: OrderTicket) -> bool:
        """Hook: whether the sender of the modification ``refused`` (the last one sent of its order) takes the
        broker's refusal of it over, to send it again and to say it if it gives up (the engine's protective
        cuts, after a :data:`TRANSIENT_REFUSALS` one); it is not said here then."""
        return False

    def _say_refused(self, error: BrokerError, refused: OrderTicket, held: OrderTicket) -> None:
        order = self.orders.orders[error.order_ref]
        now = "works on" if order.status.is_working else f"is {order.status.value}"  # a race with its fill, say
        text = (f"{order.order_ref} ({held.order_type.value} {held.side.value} {held.symbol}): the broker refused "
                f"its modification to {_figures(refused)} ({error.code}: {error.message}); it {now} at "
                f"{_figures(held)}")
        oversized = [o for o in (order, *self.orders.children(order.order_ref)) if self._too_large(o)]
        if not oversized:
            self.alert(AlertLevel.WARNING, "orders", text, kind="modify_refused")
            return
        what = "; ".join(f"{o.order_ref} at {o.remaining:g} is larger than {self._protected(o)[1]}" for o in oversized)
        self.alert(AlertLevel.CRITICAL, "protection", f"{text}. {what}: if it fills, the position reverses",
                   kind="modify_refused")

    def _too_large(self, order: Order) -> bool:
        """A working protective order larger than what it protects (:meth:`_protected`)."""
        return (order.ticket.reduce_only and order.status.is_working
                and order.remaining > self._protected(order)[0] + 1e-9)

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

    # -- bracket children --------------------------------------------------------------------------

    def _children_to_resize(self, order: Order, quantity: float) -> list[Order]:
        """The working bracket children of an entry whose quantity changes to ``quantity``.

        Raises:
            SafetyError: A child is not acknowledged or has filled: it cannot follow the entry.
        """
        if order.parent_ref is not None or quantity == order.ticket.quantity:
            return []
        children = [c for c in self.orders.children(order.order_ref) if not c.status.is_final]
        for child in children:
            if not child.modifiable or child.filled_quantity > 0:
                raise SafetyError(f"{order.order_ref}'s {child.ticket.reason or 'exit'} {child.order_ref} is "
                                  f"{child.status.value} with {child.filled_quantity:g} filled: it cannot be "
                                  "resized with its entry. Cancel the bracket and enter again", "Refused")
        return children

    def _refuse_oversized_child(self, order: Order, quantity: float) -> None:
        """A protective child may not exceed its working entry, nor the position once the entry is done.

        Raises:
            SafetyError: ``quantity`` is larger: the exit would open a position the other way.
        """
        if order.parent_ref is None or quantity <= order.ticket.quantity:
            return
        cap, what = self._protected(order)
        if quantity > cap:
            raise SafetyError(f"{order.order_ref} at {quantity:g} would exceed {what} and open a position the "
                              "other way; change the entry's quantity instead (its exits follow it)", "Refused")

    def _protected(self, order: Order) -> tuple[float, str]:
        """How much protective ``order`` may hold at most, and what that is: its working entry's quantity, else
        the position it protects."""
        parent = self.orders.get(order.parent_ref) if order.parent_ref else None
        if parent is not None and parent.status.is_working:
            return parent.ticket.quantity, f"its entry {parent.order_ref} ({parent.ticket.quantity:g})"
        held = max(self.portfolio.quantity(order.symbol) * -order.ticket.side.sign, 0.0)
        return held, f"the {order.symbol} position it protects ({held:g})"

    def _links(self, order: Order) -> tuple[int, str]:
        """Parent broker id and OCA group of a bracket child (as first placed)."""
        if order.parent_ref is None:
            return 0, ""
        parent = self.orders.orders[order.parent_ref]
        siblings = self.orders.children(order.parent_ref)
        return parent.broker_id or 0, f"oca-{parent.order_ref}" if len(siblings) > 1 else ""


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


@dataclass(slots=True)
class _Turns:
    """The modifies of one order: the lock they take turns on, and how many hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


def _changes(order: Order, quantity: float | None, limit_price: float | None,
             stop_price: float | None) -> dict[str, Any]:
    if not order.modifiable:
        raise SafetyError(f"{order.order_ref} is {order.status.value}: only a working, acknowledged order "
                          "can be modified", "Refused")
    changes = {k: v for k, v in (("quantity", quantity), ("limit_price", limit_price),
                                 ("stop_price", stop_price)) if v is not None}
    if not changes:
        raise ValueError("nothing to modify")
    if quantity is not None and quantity <= order.filled_quantity:
        raise SafetyError(f"{order.order_ref} has {order.filled_quantity:g} filled already: a quantity of "
                          f"{quantity:g} is not above it. Cancel the rest instead", "Refused")
    return changes


def _refuse_unresendable(orders: list[Order], what: str) -> None:
    """Refuse to send again an order the engine cannot send as the broker holds it (one adopted from it).

    Raises:
        SafetyError: Naming the order and why (:func:`~tui_trader.engine.adopted.not_resendable`).
    """
    for order in orders:
        if why := not_resendable(order.ticket):
            raise SafetyError(f"{order.order_ref} cannot be {what}: {why}. Sent again, it would reach the broker as "
                              "another order; cancel it here, or change it in TWS", "Refused")


def _echoes(sent: OrderTicket, report: BrokerOrderReport) -> bool:
    """``report`` carries the figures of the modification ``sent``: its size and prices, and a trailing stop's
    stop (the adapter reports the one the broker last took; without it, any report of the order, the one
    putting it back at a refusal too, confirmed a refused change of the stop alone)."""
    stop, theirs = sent.stop_price, report.stop_price
    if sent.order_type is OrderType.TRAIL and stop is not None and theirs is not None and abs(stop - theirs) > 1e-9:
        return False
    return broker_figures(sent, report) == sent


def _refuses_modify(code: int) -> bool:
    """An order error that refuses a modification (anything but a cancellation, a cancel's race or a notice)."""
    notice = 2100 <= code < 2200 and code != _STILL_PROCESSING
    return code not in _NOT_REFUSALS and not notice


def _figures(ticket: OrderTicket) -> str:
    """``70 stp 100``: the size and the prices of an order."""
    prices = [f"{name} {p:g}" for name, p in (("lmt", ticket.limit_price), ("stp", ticket.stop_price)) if p is not None]
    return " ".join((f"{ticket.quantity:g}", *prices))
