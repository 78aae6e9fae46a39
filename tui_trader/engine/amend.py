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

The engine takes a modification's figures as the order's from the moment it is sent;
:class:`~tui_trader.engine.pending.PendingModifications` remembers what the broker holds until it answers, and
shows and counts the order at it meanwhile. An error for the order refuses it
(:meth:`Amendments.on_order_error`, :func:`~tui_trader.broker.base.refuses_modify`): the order is put back to the
figures the broker still holds (or, refused with 104, filled at), said and journaled.
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

from tui_trader.broker.base import (
    MODIFY_OF_FILLED,
    ORDER_NOT_FOUND,
    STILL_PROCESSING,
    BrokerError,
    BrokerOrderReport,
    refuses_modify,
)
from tui_trader.domain.enums import AlertLevel, OrderStatus
from tui_trader.domain.events import ModifyRefused, OperatorAction, OrderChecked, OrderDenied
from tui_trader.domain.orders import (
    MODIFY_NOTE,
    NOT_SENT_NOTE,
    REFUSED_NOTE,
    RESIZED_NOTE,
    Fill,
    Order,
    OrderTicket,
    figures,
    order_words,
)
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.adopted import not_resendable
from tui_trader.engine.orders import error_text
from tui_trader.engine.pending import PendingModifications
from tui_trader.errors import SafetyError, UnknownOrderError

log = logging.getLogger(__name__)
S = OrderStatus
_AMBIGUOUS = frozenset({S.SENDING, S.UNKNOWN})
_LOOKBACK = timedelta(minutes=5)
TRANSIENT_REFUSALS = frozenset({STILL_PROCESSING, 100})
"""Refusals of a modification that say nothing against it, only against its moment: IB still processing the
order (2102), the gateway's message rate exceeded (100, "max rate of messages per second"). The same
modification sent again a little later can pass (a protective cut is: :meth:`Amendments.claims_refusal`)."""


class Amendments(PendingModifications):
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
            for order in family:  # a new placement: the broker's answer to it comes under a new permanent id
                self.orders.placed_again(order.order_ref)
            await self.send(order_ref)
        return self.orders.orders[order_ref]

    async def find_at_broker(self, family: list[Order]) -> tuple[list[BrokerOrderReport], list[Fill]]:
        """Every broker record of these orders: open and completed orders, executions (:func:`about`)."""
        since = min(o.created_at for o in family) - _LOOKBACK
        opened = await self.broker.open_orders()
        completed = await self.broker.completed_orders()
        executions = await self.broker.executions(since)
        reports = [r for r in (*opened, *completed) if about(family, r.order_ref, r.perm_id)]
        return reports, [f for f in executions if about(family, f.order_ref, f.perm_id)]

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
                     stop_price: float | None = None, *, operator: bool = True) -> RiskVerdict:
        """Re-place a working order under its broker id with new figures, after a risk check.

        ``operator``: the operator's modify (the handle's), journaled once sent as an :class:`OperatorAction`
        ``modify_order`` with the figures before and after; the engine's own (a protective cut) passes False.

        A bracket entry's new quantity resizes its working stop and target in the same amendment
        (see :meth:`_send_amended`); a protective child may not grow past its entry nor the
        position it protects.

        Modifies of one order take turns, in the order they were asked for (the operator's, the
        protective cuts' of :class:`~tui_trader.engine.cuts.ProtectionCuts`): each is checked against the
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
            return await self._modify(order_ref, quantity, limit_price, stop_price, operator)

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
                      stop_price: float | None, operator: bool) -> RiskVerdict:
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
        if operator:
            with_children = f"; {', '.join(c.order_ref for c in children)} resized with it" if children else ""
            self.publish(OperatorAction(self.now(), "operator", "modify_order", order_words(order) + with_children,
                                        figures(order.ticket), figures(ticket), order_ref))
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

    async def _previous_answered(self, order_ref: str) -> None:
        """Wait for the broker's answer to the modifications of ``order_ref`` and its exits still unanswered,
        at most until the ack timeout of the last one sent.

        IB refuses to modify an order while it processes the last modification (2102): sent at once,
        the second was refused. And a refusal puts the order back to the figures the broker kept,
        which the next modify is checked against.
        """
        refs = [order_ref, *(c.order_ref for c in self.orders.children(order_ref))]
        if not await self._modifications_answered(refs, self.config.ack_timeout_s):
            log.warning("%s: modification unanswered after %gs; the next one goes", order_ref,
                        self.config.ack_timeout_s)

    def on_order_error(self, error: BrokerError) -> None:
        """Also: an error for an order with a modification unanswered that refuses it (IB answers the oldest first;
        which errors do: :func:`~tui_trader.broker.base.refuses_modify`). The order works on at the figures it had,
        or after a 104 filled at them: shown at them again, unless a newer modification is still on its way, said
        (CRITICAL for a protective order left larger than what it protects) and journaled (a :class:`ModifyRefused`:
        the operator's modify was not done, the report and the trace say so). A reconciliation checks
        the order is still working; after a 104 only if its fill has not come by the ack timeout (it is on its
        way: read at once, the fill was found again by the reconciliation and said as recovered)."""
        refusal = self._refuse_oldest(error.order_ref) if refuses_modify(error.code) else None
        if refusal is None:
            super().on_order_error(error)
            return
        refused, held = refusal.refused, refusal.held
        order = self.orders.get(error.order_ref)
        if not refusal.newer_sent and order is not None and order.ticket != held:
            # An order that ended meanwhile (its fill heard before the 104) ended at the figures held, too. The
            # broker's error goes with the step that puts the order back: one update of it, not two.
            self.orders.set_error(error.order_ref, error_text(error.code, error.message))
            self._amend(order, held, f"{REFUSED_NOTE} ({error.code}): as before")
        else:
            self.show_order_error(error)
        self._review_pending(error.order_ref)
        if order is not None:
            self.publish(ModifyRefused(self.now(), error.order_ref, error.code, error.message, figures(refused),
                                       figures(held)))
            if refusal.newer_sent or not self.claims_refusal(error, refused):
                self._say_refused(error, refused, held, refusal.newer_sent)
            else:
                log.info("%s: modification refused (%d: %s), left to its sender", error.order_ref, error.code,
                         error.message)
            self.after_figures_taken(error.order_ref)
        if error.code == MODIFY_OF_FILLED:
            self.call_later(self.config.ack_timeout_s, self._fill_after_refusal, error.order_ref,
                            name=f"fill-of-{error.order_ref}")
        else:
            self.request_reconcile(f"{error.order_ref}: modification refused ({error.code})")

    def _fill_after_refusal(self, order_ref: str) -> None:
        """The broker refused a modification of ``order_ref`` as filled (104): its fill is on its way. Only if the
        order still works an ack timeout later is what the broker holds read by a reconciliation."""
        order = self.orders.get(order_ref)
        if order is not None and order.status.is_working:
            self.request_reconcile(f"{order_ref}: filled at the broker ({MODIFY_OF_FILLED}), no fill heard")

    def claims_refusal(self, error: BrokerError, refused: OrderTicket) -> bool:
        """Hook: whether the sender of the modification ``refused`` (the last one sent of its order) takes the
        broker's refusal of it over, to send it again and to say it if it gives up (the engine's protective
        cuts, after a :data:`TRANSIENT_REFUSALS` one); it is not said here then."""
        return False

    def _say_refused(self, error: BrokerError, refused: OrderTicket, held: OrderTicket,
                     newer_sent: bool = False) -> None:
        """Say the broker refused the modification to ``refused``: the order works on at ``held``, until the
        broker answers a newer modification still on its way (``newer_sent``: the text says so)."""
        order = self.orders.orders[error.order_ref]
        if error.code == MODIFY_OF_FILLED:  # whatever the engine has heard of it yet: the broker says it filled
            where = f"it filled at {_figures(held)} first"
        elif error.code == ORDER_NOT_FOUND:
            where = f"the broker does not know it (or its parent): at {_figures(held)} until a reconciliation reads it"
        else:
            now = "works on" if order.status.is_working else f"is {order.status.value}"  # a race with its cancel, say
            where = f"it {now} at {_figures(held)}"
        if newer_sent and order.status.is_working and error.code != MODIFY_OF_FILLED:
            where += f" until the broker answers the newer modification to {_figures(order.ticket)}"
        text = (f"{order.order_ref} ({held.order_type.value} {held.side.value} {held.symbol}): the broker refused "
                f"its modification to {_figures(refused)} ({error.code}: {error.message}); {where}")
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
        """Parent broker id and OCA group a modification of ``order`` names.

        The OCA group is the one the broker holds it in (:meth:`_held_oca_group`). The parent's id only while the
        entry works: IB looks up a parentId on every ``placeOrder`` and refuses one naming an order it no longer
        has with 135 ("Can't find order with id"), as it has not an entry done on an earlier day or before the
        gateway's restart, so a GTC stop moved the next day was refused on every modify. Sent as 0 once the entry
        is done, IB moves the child; the link had done its work (the child is live since the fill) and the OCA
        group still pairs stop and target. Nor may the entry still be in memory here: after a restart only open
        orders are.
        """
        oca = self._held_oca_group(order)
        parent = self.orders.get(order.parent_ref) if order.parent_ref is not None else None
        if parent is None or parent.status.is_final:
            return 0, oca
        return parent.broker_id or 0, oca

    def _held_oca_group(self, order: Order) -> str:
        """The OCA group the broker holds ``order`` in (``""``: none), which a modification names again: IB refuses
        one that changes it (10326, "OCA group revision is not allowed"), and an order keeps its group for life.

        As the last reconciliation read it from the broker (:attr:`broker_oca_groups`: an adopted stop and target
        linked in TWS too); else, a bracket child placed since, the group it was placed with (``oca-<entry ref>``
        when its entry had more than one child, :meth:`_place_family`). Counted from the children in memory alone,
        the stop of a bracket whose target had ended before a restart (only open orders are restored) was
        modified with no group, and IB refused every modify of it.
        """
        if held := self.broker_oca_groups.get(order.order_ref):
            return held
        if order.parent_ref is not None and len(self.orders.children(order.parent_ref)) > 1:
            return f"oca-{order.parent_ref}"
        return ""


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


def about(family: list[Order], order_ref: str, perm_id: int | None) -> bool:
    """A broker record (an order report, an execution) under ``order_ref`` and ``perm_id`` is about one of
    ``family``: by the permanent id when the order and the record both have one, else by the orderRef.

    The orderRef alone is not an order's: another tool (or a TWS user) may give every order the same one, and an order
    of theirs adopted here as ``<orderRef>#<permId>`` carries the broker's orderRef, not that name. Taken by its
    orderRef, another order under it was found for one the broker had lost, which then was never resent.
    """
    return any(perm_id == o.perm_id if perm_id and o.perm_id else order_ref == o.order_ref for o in family)


def _refuse_unresendable(orders: list[Order], what: str) -> None:
    """Refuse to send again an order the engine cannot send as the broker holds it (one adopted from it).

    Raises:
        SafetyError: Naming the order and why (:func:`~tui_trader.engine.adopted.not_resendable`).
    """
    for order in orders:
        if why := not_resendable(order.ticket):
            raise SafetyError(f"{order.order_ref} cannot be {what}: {why}. Sent again, it would reach the broker as "
                              "another order; cancel it here, or change it in TWS", "Refused")


def _figures(ticket: OrderTicket) -> str:
    """``70 stp 100``: the size and the prices of an order."""
    prices = [f"{name} {p:g}" for name, p in (("lmt", ticket.limit_price), ("stp", ticket.stop_price)) if p is not None]
    return " ".join((f"{ticket.quantity:g}", *prices))
