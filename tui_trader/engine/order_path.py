"""The order path: risk gate → approval → risk re-check → journaled SENDING → broker.

Every order passes the risk engine before it is queued for approval and again immediately
before it is sent; it is journaled (committed) as SENDING before it reaches the wire. That
commit normally happens on the loop's thread with no await, so the order is placed in the same
step as its risk check; when the journal has to wait (another process holds the file's lock),
the trading state is checked once more after the wait, so a kill that lands while an order is
in flight stops it. Brackets are approved and sent as one family (entry plus OCA children).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from tui_trader.broker.base import BrokerRequestError
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, TimeInForce, TradingState
from tui_trader.domain.events import (
    ApprovalRequested,
    ApprovalResolved,
    MessagesSent,
    OperatorAction,
    OrderChecked,
    OrderDenied,
    OrderNotSent,
    WhatIfAnswered,
)
from tui_trader.domain.orders import Order, OrderTicket, StatusChange, WhatIf
from tui_trader.domain.portfolio import AccountSnapshot
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.approvals import as_of
from tui_trader.engine.core import EngineCore
from tui_trader.engine.snapshots import PendingApproval
from tui_trader.errors import SafetyError, UnknownOrderError
from tui_trader.risk.book import build_book
from tui_trader.risk.checks import check_trading_state

log = logging.getLogger(__name__)
S = OrderStatus
SENDING_NOTE = "journaled before send"
WHAT_IF_ASKING = "asking the broker"
NOT_SENT = "not sent"
"""The end of every note that moves an order journaled as SENDING on without placing it (``_not_sent``)."""
DRY_RUN_NOTE = f"dry run: {NOT_SENT}"
# What a send may start from: approved, or journaled as SENDING / UNKNOWN and resubmitted.
SENDABLE = frozenset({S.APPROVED, S.SENDING, S.UNKNOWN})
EXIT_PENDING = (S.PENDING_APPROVAL, S.APPROVED, S.SENDING, S.SUBMITTED, S.PARTIALLY_FILLED, S.UNKNOWN)
"""An exit in one of these has not ended: another would cancel it as protection and replace it."""
PLACED = (S.SUBMITTED, S.PARTIALLY_FILLED)
"""Acknowledged by the broker and working there (what a modify re-places)."""


def _prices(ticket: OrderTicket) -> tuple[object, ...]:
    """What of ``ticket`` a cut leaves as it is: side, type and prices."""
    return (ticket.side, ticket.order_type, ticket.limit_price, ticket.stop_price, ticket.trail_amount,
            ticket.trail_percent)


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


class OrderPath(EngineCore):
    """Submission, approval, sending, cancelling."""

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
        extra = self._engine_checks(ticket, order_ref)
        if extra:
            return RiskVerdict(False, (*extra, *verdict.checks))
        return verdict

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
        if self.blocks and not self._only_reduces(ticket, order_ref):
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
        the other's stop and target both beside it, and every cut of the two was refused."""
        snapshot = self.account_snapshot()
        own = self.oca_group(self.orders.orders[order_ref])
        kept: list[Order] = []
        largest: dict[str, Order] = {}
        for o in snapshot.working_orders:
            if o.symbol != symbol or not o.ticket.reduce_only:
                kept.append(o)
            elif (group := self.oca_group(o)) != own and (
                    (best := largest.get(group)) is None or o.remaining > best.remaining):
                largest[group] = o
        return replace(snapshot, working_orders=(*kept, *largest.values()))

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

    def _deny(self, ticket: OrderTicket, verdict: RiskVerdict, order_ref: str = "") -> Order:
        now = self.now()
        if order_ref:
            self._move_family(order_ref, S.REJECTED, f"risk: {verdict.reason}")
            order = self.orders.orders[order_ref]
        else:
            order = self.orders.create(ticket, S.REJECTED, now, note=f"risk: {verdict.reason}")
            self.publish_order(order)
        self.publish(OrderDenied(now, ticket, verdict, order.order_ref))
        self.unsent_counts["denied"] += len(self.family(order.order_ref))  # as the summary counts orders
        return order

    def _create_family(self, ticket: OrderTicket, status: OrderStatus, note: str, publish: bool = True,
                       passed: tuple[StatusChange, ...] = ()) -> Order:
        now = self.now()
        parent = self.orders.create(ticket, status, now, note=note, passed=passed)
        for child in bracket_children(ticket):
            self.orders.create(child, status, now, parent.order_ref, note, passed)
        if publish:
            self._publish_family(parent.order_ref)
        return parent

    def _publish_family(self, order_ref: str, previous: OrderStatus | None = None) -> None:
        """One ``OrderUpdated`` per order of the family as it is now (``previous``: the status it came from)."""
        self._publish_orders(self.family(order_ref), previous, self.now())

    def _publish_orders(self, orders: list[Order], previous: OrderStatus | None, now: datetime) -> None:
        for order in orders:
            self.order_updated(order, previous, now)

    def family(self, order_ref: str) -> list[Order]:
        """An order and its bracket children (none when it finished long ago and left memory)."""
        order = self.orders.get(order_ref)
        return [order, *self.orders.children(order_ref)] if order is not None else []

    def _move_family(self, order_ref: str, status: OrderStatus, note: str) -> None:
        now = self.now()
        for order in self.family(order_ref):
            self.publish_order(self.orders.try_move(order.order_ref, status, now, note), order)

    # -- approvals -----------------------------------------------------------------------------

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

    # -- sending -------------------------------------------------------------------------------

    async def send_approved(self, order_ref: str) -> None:
        """Send an order the operator approved (the kill-switch layer first cancels an exit's protection)."""
        await self.send(order_ref)

    async def send(self, order_ref: str, *, past_halt: bool = False,
                   checked: RiskVerdict | None = None) -> None:
        """Re-check, journal as SENDING, then place the order family at the broker.

        ``past_halt``: it may pass a HALTED trading state when it reduces the position (the operator's
        confirmed flatten; a bracket's stop placed again while an automatic trip keeps protection).
        ``checked`` is a verdict computed for this ticket with no await since (the caller's
        gate, which created the family in SENDING, unpublished); otherwise the risk engine
        checks the ticket again here.
        """
        if self._start_send(order_ref, past_halt, checked):
            await self._send_after_flush(order_ref, past_halt)

    def send_nowait(self, order_ref: str, *, past_halt: bool = False,
                    checked: RiskVerdict | None = None) -> None:
        """:meth:`send` without a task hop; a task finishes it only if the journal has to wait."""
        if self._start_send(order_ref, past_halt, checked):
            self.spawn(self._send_after_flush(order_ref, past_halt), f"send-{order_ref}")

    def _start_send(self, order_ref: str, past_halt: bool, checked: RiskVerdict | None) -> bool:
        """Everything up to the wire that needs no await; ``True`` when the journal must be awaited first.

        The family is journaled as SENDING and committed on the loop's thread (a WAL commit,
        durable across a SIGKILL), then placed in the same step: no await between the risk
        check and the wire on the usual path. An order gated just now (``checked``) was born in
        SENDING and has no event queued yet, so only its ``orders`` rows are committed before the
        wire (one small transaction); its events are published after it and follow in the
        journal's next batch.
        """
        fresh = checked is not None
        if checked is None:
            order = self.orders.orders[order_ref]
            if order.status not in SENDABLE:
                # Cancelled, expired or lapsed (the engine stopping) since it was approved: that answer stands.
                log.info("%s not sent: it is %s", order_ref, order.status.value)
                return False
            checked = self.verdict(order.ticket, order_ref)
            if not self._passes(checked, order.ticket, past_halt):
                self._deny(order.ticket, checked, order_ref)
                return False
            self._move_family(order_ref, S.SENDING, SENDING_NOTE)
        # Journaled for every order sent, so a trace shows the checks also when no approval was asked;
        # published after the send: a record for the trace (ordered by time), not part of what must
        # be durable before the wire.
        checks = OrderChecked(self.now(), order_ref, checked, "pre-trade" if fresh else "re-check")
        self.in_flight.add(order_ref)
        committed = self._commit_sending_now(order_ref, fresh)
        if fresh and not committed:
            # Before the flush, which must journal them (False), or before the CANCELLED steps (None).
            self._publish_family(order_ref, S.APPROVED)
        if committed and self._finish_send(order_ref, past_halt, unpublished=fresh):
            self.after_wire(functools.partial(self.publish, checks))
        else:
            self.publish(checks)
        if committed is None:
            self._not_sent(order_ref, f"journal write failed: {NOT_SENT}")
        return committed is False

    async def _send_after_flush(self, order_ref: str, past_halt: bool) -> None:
        if not await self._flush_journal():
            self._not_sent(order_ref, f"journal write failed: {NOT_SENT}")
            return
        self._finish_send(order_ref, past_halt)

    def _finish_send(self, order_ref: str, past_halt: bool, unpublished: bool = False) -> bool:
        """SENDING is durable: place the family unless the trading state changed meanwhile; ``True`` when placed.

        ``unpublished``: the family was born in SENDING and its ``OrderUpdated`` events are still
        to publish: after the wire (:meth:`after_wire`, the family as it was sent), or before the
        steps that cancel it when it is not sent.
        """
        order = self.orders.orders[order_ref]
        why = self._why_not_placed(order, past_halt)
        if why is not None:
            if unpublished:
                self._publish_family(order_ref, S.APPROVED)
            self._not_sent(order_ref, why, dry_run=why is DRY_RUN_NOTE)
            return False
        self._place_family(order_ref)
        # Before the next gate, which may run before the loop turns; a token per message (the bracket's too).
        sent = self.messages_sent("place", 1 + len(self.orders.children(order_ref)), order_ref, order.ticket,
                                  publish=False)
        family = self.family(order_ref) if unpublished else []
        self.after_wire(functools.partial(self._after_send, order_ref, family, sent))
        return True

    def _after_send(self, order_ref: str, unpublished: list[Order], sent: MessagesSent) -> None:
        """After the wire: publish the family as it was sent (when born in SENDING) and the messages it went
        out in, arm its ack timeout."""
        self._publish_orders(unpublished, S.APPROVED, sent.time)
        self.publish(sent)
        self.call_later(self.config.ack_timeout_s, self._ack_timed_out, order_ref, name=f"ack-{order_ref}")

    def messages_sent(self, action: str, count: int, order_ref: str = "", ticket: OrderTicket | None = None,
                      publish: bool = True) -> MessagesSent:
        """``count`` messages went on the wire just now (see :class:`MessagesSent`): the throttle takes a token
        for each and the duplicate check remembers ``ticket`` (none: cancels).

        The record is for the journal's next batch (``publish``; the order path publishes it after the wire,
        with the order's own events): nothing but the order's SENDING record is written before the wire. A
        restart seeds the throttle from these records (:meth:`~tui_trader.engine.recovery.Recovery.open_journal`).
        A process killed before the batch loses the records of its last moments: the restart counts the sends
        of the orders it left in SENDING instead (:func:`~tui_trader.engine.recovery.unrecorded_sends`); a
        modify or cancel of those moments is not counted.
        """
        sent = MessagesSent(self.now(), action, count, order_ref, ticket)
        if ticket is None:
            self.risk.record_cancel(sent.time, count)
        else:
            self.risk.record_sent(ticket, sent.time, count)
        if publish:
            self.publish(sent)
        return sent

    def cancel_at_broker(self, order: Order) -> None:
        """Write ``order``'s cancel to the broker's socket and count it (:meth:`messages_sent`).

        A failure of the broker's cancel (the link is down) is raised, and nothing is counted.
        """
        self.broker.cancel(order.broker_id)  # type: ignore[arg-type]
        self.messages_sent("cancel", 1, order.order_ref)
        self.cancels_asked.add(order.order_ref)

    def _passes(self, verdict: RiskVerdict, ticket: OrderTicket, past_halt: bool) -> bool:
        if verdict.passed:
            return True
        # Only what reduces a position may pass HALTED, and only when asked to (``past_halt``: the
        # operator's confirmed flatten, a lost stop placed again while an automatic trip keeps protection).
        names = {c.name for c in verdict.failures}
        return past_halt and names <= {"trading_state"} and self.reduces_position(ticket)

    def _why_not_placed(self, order: Order, past_halt: bool) -> str | None:
        """Why a family whose SENDING is durable must not be placed now; ``None`` when it may."""
        ticket = order.ticket
        if self.stopping:
            return f"the engine stopped before send: {NOT_SENT}"
        if not self._still_allowed(ticket, past_halt):
            return f"trading {self.trading_state.value} before send: {NOT_SENT}"
        if (not past_halt and self.replaces_protection(ticket, order.order_ref)
                and self.protection_working(ticket.symbol, order.order_ref)):
            # Exit and stop both working could fill both: the position would reverse.
            return f"protective orders still working in {ticket.symbol}: exit {NOT_SENT}"
        if self.config.dry_run:
            return DRY_RUN_NOTE
        return None

    def _still_allowed(self, ticket: OrderTicket, past_halt: bool) -> bool:
        if self.trading_state is TradingState.ACTIVE:  # every order passes: no need to ask whether it reduces
            return True
        reduces = self.reduces_position(ticket)
        if past_halt and reduces:
            return True
        return check_trading_state(self.trading_state, reduces).passed

    def _commit_sending_now(self, order_ref: str, fresh: bool) -> bool | None:
        """Make the family's SENDING durable on the loop's thread: ``True`` done, ``False`` await a
        flush, ``None`` failed.

        ``fresh``: no event about the family was queued before its SENDING ones, so its ``orders``
        rows alone are the record; otherwise everything queued is committed, in order.
        """
        if self.journal is None:
            return True
        try:
            if fresh:
                return self.journal.commit_orders_now(self.family(order_ref))
            return self.journal.commit_now()
        except Exception as exc:  # noqa: BLE001 - any journal failure halts trading
            self.on_journal_failure(exc)
            return None

    async def _flush_journal(self) -> bool:
        if self.journal is None:
            return True
        try:
            await self.journal.flush()
        except Exception as exc:  # noqa: BLE001 - any journal failure halts trading
            self.on_journal_failure(exc)
            return False
        return True

    def on_journal_failure(self, exc: BaseException) -> None:
        """A journal write failed: halt trading (overridden by the engine to use the trigger)."""
        self.alert(AlertLevel.CRITICAL, "journal", f"journal write failed: {exc}", kind="journal_failure")

    def _not_sent(self, order_ref: str, why: str, dry_run: bool = False) -> None:
        self.in_flight.discard(order_ref)
        order = self.orders.orders[order_ref]
        self.publish(OrderNotSent(self.now(), order, why, dry_run))
        if dry_run:
            self.unsent_counts["dry_run"] += len(self.family(order_ref))  # a bracket's children too
        self._move_family(order_ref, S.CANCELLED, why)

    def _place_family(self, order_ref: str) -> None:
        parent, *children = self.family(order_ref)
        parent_id = self.broker.next_order_id()
        self.orders.bind(parent.order_ref, parent_id)
        self.broker.place(self.orders.orders[parent.order_ref], parent_id, transmit=not children)
        oca = f"oca-{order_ref}" if len(children) > 1 else ""
        for i, child in enumerate(children):
            child_id = self.broker.next_order_id()
            self.orders.bind(child.order_ref, child_id)
            self.broker.place(self.orders.orders[child.order_ref], child_id, parent_id=parent_id,
                              oca_group=oca, transmit=i == len(children) - 1)

    @functools.cached_property
    def in_flight(self) -> set[str]:
        """Refs of the order families journaled as SENDING (by this run, or restored from the journal) whose ack
        timeout has not run out.

        Reconciliation leaves them to the ack watcher: the broker may not have answered them yet.
        """
        return set()

    def awaiting_ack(self, order: Order) -> bool:
        """``order`` is in SENDING, in flight: sent by this run less than the ack timeout ago."""
        return order.status is S.SENDING and bool({order.order_ref, order.parent_ref} & self.in_flight)

    def resume_in_flight(self, order: Order) -> bool:
        """Treat ``order``, restored from the journal in SENDING, as in flight for what is left of its ack timeout.

        The engine died between the durable SENDING record and the broker's answer: the order may
        or may not have reached the broker. Within the ack timeout (counted from its SENDING step)
        reconciliation leaves it to the ack watcher, as for an order this run sent; after it, the
        watcher puts the order in UNKNOWN (entries blocked) and reconciliation settles it by
        orderRef. Never resubmitted. Returns ``False`` when the timeout has already run out.
        """
        sent_at = next((h.time for h in reversed(order.history) if h.status is S.SENDING), order.updated_at)
        left = self.config.ack_timeout_s - (self.now() - sent_at).total_seconds()
        if order.status is not S.SENDING or left <= 0:
            return False
        self.in_flight.add(order.order_ref)
        self.call_later(left, self._ack_timed_out, order.order_ref, name=f"ack-{order.order_ref}")
        return True

    def _ack_timed_out(self, order_ref: str) -> None:
        """The ack timeout of a family sent (or restored in SENDING) ran out: what is still SENDING is UNKNOWN."""
        self.in_flight.discard(order_ref)
        for order in self.family(order_ref):
            if order.status is S.SENDING:
                self.mark_unknown(order.order_ref, "no acknowledgement from the broker")

    def mark_unknown(self, order_ref: str, why: str) -> None:
        """Put an order in UNKNOWN, block entries and ask for reconciliation."""
        before = self.orders.orders[order_ref]
        self.publish_order(self.orders.try_move(order_ref, S.UNKNOWN, self.now(), why), before)
        self.alert(AlertLevel.ERROR, "orders", f"{order_ref} state unknown: {why}", kind="order_unknown")
        self.block("unknown_orders", "an order's state is unknown; reconciling with the broker")
        self.request_reconcile(why)

    def request_reconcile(self, why: str) -> None:
        """Schedule a reconciliation with the broker (implemented by the recovery part)."""
        raise NotImplementedError

    # -- cancelling ----------------------------------------------------------------------------

    async def cancel(self, order_ref: str) -> None:
        """Cancel one order: a pending approval is rejected, a working order cancelled at the broker."""
        order = self.orders.get(order_ref)
        if order is None:
            raise UnknownOrderError(f"no order {order_ref}: it ended and was let go, or never was")
        if order_ref in self.approvals:
            self.reject(order_ref, "cancel")
        elif order.status is S.APPROVED:
            self._move_family(order_ref, S.CANCELLED, "cancelled before send")
        elif order.status.is_working and order.broker_id is not None:
            self.cancel_at_broker(order)
            self.spawn(self._watch_cancel(order_ref), f"cancel-{order_ref}")

    async def _watch_cancel(self, order_ref: str) -> None:
        await asyncio.sleep(self.config.ack_timeout_s)
        order = self.orders.get(order_ref)  # None: finished and forgotten meanwhile
        if order is not None and order.status.is_working and order.status is not S.UNKNOWN:
            self.mark_unknown(order_ref, "cancel unanswered")
