"""Changing orders after they were sent: resubmit (never blindly) and modify by id.

A resubmit is only for an ambiguous submit (no acknowledgement: SENDING past its deadline, or
UNKNOWN). Before anything goes out again the broker is asked whether it already has that
orderRef — open orders, completed orders and executions — and if it has, the order is adopted
from the broker and nothing is sent. Only an order the broker provably lacks is placed again,
under the same orderRef, after a fresh risk check and journal write.

A modify re-places a working order under its own broker id with a new quantity, limit or stop
price; the changed ticket passes the risk engine first (excluding the order's own old size)
and is journaled before it is sent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.enums import AlertLevel, OrderStatus
from tui_trader.domain.events import OrderChecked, OrderDenied
from tui_trader.domain.orders import Fill, Order
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.reconcile import Reconciliation
from tui_trader.errors import SafetyError

log = logging.getLogger(__name__)
S = OrderStatus
_AMBIGUOUS = frozenset({S.SENDING, S.UNKNOWN})
_LOOKBACK = timedelta(minutes=5)


class Amendments(Reconciliation):
    """Resubmit after an ambiguous submit; modify a working order by id."""

    # -- resubmit --------------------------------------------------------------------------------

    async def resubmit(self, order_ref: str) -> Order:
        """Resend an order whose submit is ambiguous, unless the broker already has it.

        Raises:
            KeyError: No such order.
            SafetyError: The order (or one of its bracket) is not in an ambiguous state.
        """
        family = self.family(order_ref)
        if any(o.status not in _AMBIGUOUS for o in family):
            raise SafetyError(f"{order_ref} is not awaiting an acknowledgement: nothing to resubmit", "Refused")
        reports, fills = await self.find_at_broker(family)
        if reports or fills:
            self._adopt_found(order_ref, reports, fills)
        else:
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

        Returns the verdict; a denial is published as :class:`OrderDenied` and nothing is sent.

        Raises:
            KeyError: No such order.
            SafetyError: Live trading is not armed, or the order is not working and acknowledged.
            ValueError: Nothing to change, or a quantity not above what has filled.
        """
        self.require_armed()  # a modification reaches the market as an approval does
        order = self.orders.orders[order_ref]
        ticket = replace(order.ticket, **_changes(order, quantity, limit_price, stop_price))
        verdict = self.verdict(ticket, order_ref)
        if not verdict.passed:
            self.publish(OrderDenied(self.now(), ticket, verdict, order_ref))
            return verdict
        note = f"modify requested: {ticket.quantity:g} lmt={ticket.limit_price} stp={ticket.stop_price}"
        amended = self.orders.amend(order_ref, ticket, self.now(), note)
        self.publish(OrderChecked(self.now(), order_ref, verdict, "modify"))  # the trace shows the new checks
        self.publish_order(amended, order)
        if not await self._flush_journal():
            return RiskVerdict(False, (CheckResult("journal", False, message="journal write failed: not sent"),))
        parent_id, oca = self._links(amended)
        self.broker.place(amended, order.broker_id or 0, parent_id=parent_id, oca_group=oca)
        self.risk.record_sent(ticket, self.now())
        return verdict

    def _links(self, order: Order) -> tuple[int, str]:
        """Parent broker id and OCA group of a bracket child (as first placed)."""
        if order.parent_ref is None:
            return 0, ""
        parent = self.orders.orders[order.parent_ref]
        siblings = self.orders.children(order.parent_ref)
        return parent.broker_id or 0, f"oca-{parent.order_ref}" if len(siblings) > 1 else ""


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
        raise ValueError(f"quantity {quantity:g} must exceed the filled {order.filled_quantity:g}")
    return changes
