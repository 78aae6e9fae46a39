"""The order path: risk gate → approval → risk re-check → journaled SENDING → broker.

Its entry points: an order submitted (gated, then queued for approval or sent at once), approved,
rejected, expired or cancelled. Every order passes the risk engine (:mod:`~tui_trader.engine.gate`)
before it is queued for approval and again immediately before it is sent; it is journaled as
SENDING before it reaches the wire (:mod:`~tui_trader.engine.send`). Brackets are approved and sent
as one family (entry plus OCA children).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from tui_trader.broker.base import BrokerRequestError
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, TimeInForce
from tui_trader.domain.events import ApprovalRequested, ApprovalResolved, OperatorAction, WhatIfAnswered
from tui_trader.domain.orders import Order, OrderTicket, StatusChange, WhatIf, order_words
from tui_trader.domain.verdicts import RiskVerdict
from tui_trader.engine.approvals import as_of
from tui_trader.engine.send import SENDING_NOTE, OrderSending
from tui_trader.engine.snapshots import PendingApproval
from tui_trader.errors import SafetyError, UnknownOrderError

log = logging.getLogger(__name__)
S = OrderStatus
WHAT_IF_ASKING = "asking the broker"


def bracket_children(ticket: OrderTicket) -> list[OrderTicket]:
    """The protective exits of an entry: a stop (fixed or trailing) and an optional target.

    They are GTC whatever the entry's time in force: a DAY stop expired at the close and left a
    position held overnight with nothing at the broker, to open the next morning into a gap. An
    entry that never fills still takes them with it (the broker cancels a parent's children with it).
    """
    b = ticket.bracket
    if b is None:
        return []
    side, out = ticket.side.opposite, []
    base = OrderTicket(ticket.symbol, side, ticket.quantity, tif=TimeInForce.GTC, strategy=ticket.strategy,
                       outside_rth=ticket.outside_rth, reduce_only=True, created_at=ticket.created_at)
    if b.trails:
        out.append(replace(base, order_type=OrderType.TRAIL, trail_amount=b.trail_amount,
                           trail_percent=b.trail_percent, stop_price=b.stop_price, reason="trailing stop"))
    elif b.stop_price:
        out.append(replace(base, order_type=OrderType.STP, stop_price=b.stop_price, reason="protective stop"))
    if b.take_profit_price:
        out.append(replace(base, order_type=OrderType.LMT, limit_price=b.take_profit_price,
                           reason="take profit"))
    return out


class OrderPath(OrderSending):
    """Submission, approval, cancelling: the order path's entry points (the gate and the send below them)."""

    # -- submission ----------------------------------------------------------------------------

    async def submit(self, ticket: OrderTicket) -> Order:
        """Gate ``ticket``; queue it for approval or send it. Returns the tracked order."""
        order, verdict = self._admit(ticket)
        if verdict is not None:
            await self.send(order.order_ref, checked=verdict)
        return self.orders.get(order.order_ref) or order  # forgotten only long after it finished

    def submit_nowait(self, ticket: OrderTicket) -> Order:
        """:meth:`submit` without a task hop, for the engine's own signals (strategies, benchmarks).

        The order is gated, journaled and on the wire before this returns, unless its SENDING
        record has to wait for the journal (then a task finishes the send).
        """
        order, verdict = self._admit(ticket)
        if verdict is not None:
            self.send_nowait(order.order_ref, checked=verdict)
        return self.orders.orders[order.order_ref]

    def _admit(self, ticket: OrderTicket) -> tuple[Order, RiskVerdict | None]:
        """Gate ``ticket``: the tracked order, plus the passing verdict when it is to be sent now."""
        ticket = self._prepare(ticket)
        verdict = self.verdict(ticket)
        if not verdict.passed:
            return self._deny(ticket, verdict), None
        if self.config.approvals_required:
            return self._request_approval(ticket, verdict), None
        # Nothing is awaited between this gate and the send: its verdict is the re-check, not a stale one.
        # The family is born in SENDING (its history keeps the APPROVED step) and published by the send,
        # after the wire when it goes there at once: nothing about it is queued for the journal before.
        now = self.now()
        approved = (StatusChange(S.APPROVED, now, "approval not required"),)
        return self._create_family(ticket, S.SENDING, SENDING_NOTE, publish=False, passed=approved), verdict

    def _create_family(self, ticket: OrderTicket, status: OrderStatus, note: str, publish: bool = True,
                       passed: tuple[StatusChange, ...] = ()) -> Order:
        now = self.now()
        parent = self.orders.create(ticket, status, now, note=note, passed=passed)
        for child in bracket_children(ticket):
            self.orders.create(child, status, now, parent.order_ref, note, passed)
        if publish:
            self._publish_family(parent.order_ref)
        return parent

    # -- approvals -----------------------------------------------------------------------------

    def approvals_as_of_now(self) -> tuple[PendingApproval, ...]:
        """The pending approvals, each with the verdict it would get now and the symbol's mark now.

        What the operator decides on: positions, exposure and prices move while an approval waits
        (the verdict and price taken when it was queued went stale with the first fill). The order
        is checked again when approved, right before it is sent.
        """
        out = []
        for item in self.approvals.items():
            order = self.orders.get(item.order.order_ref) or item.order  # as tracked (amended, say)
            mark = self.market.mark(order.ticket.symbol)
            price = mark if mark > 0 else item.reference_price  # NaN or no quote: the last known
            out.append(as_of(item, order, self.verdict(order.ticket, order.order_ref), price))
        return tuple(out)

    def _request_approval(self, ticket: OrderTicket, verdict: RiskVerdict) -> Order:
        order = self._create_family(ticket, S.PENDING_APPROVAL, "waiting for approval")
        why_not = self._why_no_what_if()
        item = self.approvals.add(order, verdict, self.now(), self.market.mark(ticket.symbol),
                                  why_not or WHAT_IF_ASKING)
        self.publish(ApprovalRequested(self.now(), order, verdict, item.expires_at))
        if why_not is None:
            self.spawn(self._ask_what_if(order), f"what-if-{order.order_ref}")
        return order

    def _why_no_what_if(self) -> str | None:
        """Why the broker is not asked for a what-if of an order waiting for approval; ``None``: it is."""
        if self.config.dry_run:
            return "not asked (dry run: nothing goes to the broker)"
        if self.config.readonly:
            return "not asked (read-only API)"
        if not self.broker.is_connected:
            return "not asked (broker not connected)"
        return None

    async def _ask_what_if(self, order: Order) -> None:
        """Ask the broker what ``order`` would do to margin and commission; the approval shows the answer.

        IB checks a what-if like an order and never transmits it. Only the entry is asked about
        (a bracket's exits reduce what it adds).
        """
        ref = order.order_ref
        answer, note = await self._what_if_answer(order)
        self.approvals.set_what_if(ref, note, answer)
        self.publish(WhatIfAnswered(self.now(), ref, answer, note))  # for the order's trace

    async def what_if(self, ticket: OrderTicket) -> tuple[WhatIf | None, str]:
        """The broker's what-if of ``ticket`` as it stands (the order ticket asks before submitting):
        its answer and the broker's warning, or ``None`` and why there is none. Nothing is placed,
        tracked or journaled."""
        why_not = self._why_no_what_if()
        if why_not is not None:
            return None, why_not
        prepared = self._prepare(ticket)
        now = self.now()
        return await self._what_if_answer(Order("what-if", prepared, S.PENDING_APPROVAL, now, now))

    async def _what_if_answer(self, order: Order) -> tuple[WhatIf | None, str]:
        try:
            answer = await self.broker.what_if(order, self.config.ack_timeout_s)
        except BrokerRequestError as exc:
            return None, f"refused by the broker: {exc}"
        except TimeoutError:
            return None, "no answer from the broker"
        except ConnectionError as exc:  # the link dropped before it answered (or before it was sent)
            return None, f"no answer (broker: {exc})"
        return answer, answer.warning

    def arm(self, account_id: str, by: str = "operator") -> None:
        """Arm live trading: the operator typed the id of the account the gateway reports.

        Raises:
            SafetyError: the typed id is not the connected account's.
        """
        if self.armed:
            return
        if not self.account_id or account_id.strip() != self.account_id:
            raise SafetyError(f"typed account id {account_id!r} is not the connected account "
                              f"{self.account_id or '(none yet)'}: live trading stays unarmed", "Not armed")
        self.armed = True
        self.approvals.release(self.now())  # asked while nobody could see them: their time starts now
        self.publish(OperatorAction(self.now(), by, "arm_live", f"typed account id {account_id}",
                                    "unarmed", "armed"))

    def require_armed(self) -> None:
        """Raise SafetyError unless trading is armed (live starts unarmed until the preflight)."""
        if not self.armed:
            raise SafetyError("live trading is not armed: type the account id in the preflight first",
                              "Not armed")

    def approve(self, order_ref: str, by: str = "operator") -> None:
        """Approve a pending order; it is re-checked by risk right before it is sent.

        Raises:
            SafetyError: live trading is not armed yet, or the approval's deadline has passed (the
                monitor tick expires approvals once a second; an answer in between is not taken).
        """
        self.require_armed()
        self.expire_approvals()
        order = self.orders.get(order_ref)
        if order_ref not in self.approvals and order is not None and order.status is S.EXPIRED:
            raise SafetyError(f"the approval of {order_ref} had expired: the order was denied, not sent", "Expired")
        item = self._pop_approval(order_ref)
        self._move_family(order_ref, S.APPROVED, f"approved by {by}")
        self.publish(ApprovalResolved(self.now(), order_ref, True, by))
        self.spawn(self.send_approved(order_ref), f"send-{order_ref}")
        log.info("approved %s (%s)", order_ref, item.order.ticket.symbol)

    def reject(self, order_ref: str, by: str = "operator") -> None:
        """Reject a pending order."""
        self._pop_approval(order_ref)
        self._move_family(order_ref, S.REJECTED, f"rejected by {by}")
        self.publish(ApprovalResolved(self.now(), order_ref, False, by))

    def _pop_approval(self, order_ref: str) -> PendingApproval:
        item = self.approvals.pop(order_ref)
        if item is None:
            raise UnknownOrderError(f"no pending approval for {order_ref}: it was answered, expired or cancelled")
        return item

    def expire_approvals(self) -> None:
        """Expire approvals past their deadline (expiry means deny)."""
        for item in self.approvals.expired(self.now()):
            ref = item.order.order_ref
            self._move_family(ref, S.EXPIRED, "approval expired")
            self.publish(ApprovalResolved(self.now(), ref, False, "timeout", "approval expired"))
            self.alert(AlertLevel.WARNING, "approvals", f"approval of {ref} expired: order denied",
                       kind="approval_expired")

    def reject_all_pending(self, why: str) -> None:
        """Deny every pending approval (the kill switch does this synchronously)."""
        for item in self.approvals.drain():
            self._move_family(item.order.order_ref, S.REJECTED, why)
            self.publish(ApprovalResolved(self.now(), item.order.order_ref, False, "engine", why))

    # -- cancelling ----------------------------------------------------------------------------

    async def cancel(self, order_ref: str) -> None:
        """Cancel one order (the operator's cancel): a pending approval is rejected, a working order cancelled
        at the broker. Journaled as an :class:`OperatorAction` ``cancel_order`` (the order, its status before,
        what was done), so the record says who cancelled it; an order with nothing to cancel is left alone."""
        order = self.orders.get(order_ref)
        if order is None:
            raise UnknownOrderError(f"no order {order_ref}: it ended and was let go, or never was")
        if order_ref in self.approvals:
            self.reject(order_ref, "cancel")
            done = "rejected before approval"
        elif order.status is S.APPROVED:
            self._move_family(order_ref, S.CANCELLED, "cancelled before send")
            done = "cancelled before send"
        elif order.status.is_working and order.broker_id is not None:
            self.cancel_at_broker(order)
            self.spawn(self._watch_cancel(order_ref), f"cancel-{order_ref}")
            done = "cancel sent to the broker"
        else:
            return
        self.publish(OperatorAction(self.now(), "operator", "cancel_order", order_words(order),
                                    order.status.value, done, order_ref))

    async def _watch_cancel(self, order_ref: str) -> None:
        await asyncio.sleep(self.config.ack_timeout_s)
        order = self.orders.get(order_ref)  # None: finished and forgotten meanwhile
        if order is not None and order.status.is_working and order.status is not S.UNKNOWN:
            self.mark_unknown(order_ref, "cancel unanswered")
