"""Sending: an order family re-checked, journaled as SENDING, placed at the broker, its ack awaited.

Every order passes the risk engine again immediately before it is sent; it is journaled (committed)
as SENDING before it reaches the wire. That commit normally happens on the loop's thread with no
await, so the order is placed in the same step as its risk check; when the journal has to wait
(another process holds the file's lock), the trading state is checked once more after the wait, so
a kill that lands while an order is in flight stops it. Brackets are sent as one family (entry plus
OCA children).
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from tui_trader.domain.enums import AlertLevel, OrderStatus, TradingState
from tui_trader.domain.events import MessagesSent, OrderChecked, OrderDenied, OrderNotSent
from tui_trader.domain.orders import DRY_RUN_NOTE, NOT_SENT, Order, OrderTicket
from tui_trader.domain.verdicts import RiskVerdict
from tui_trader.engine.gate import OrderGate
from tui_trader.errors import BrokerError
from tui_trader.risk.checks import check_trading_state

log = logging.getLogger(__name__)
S = OrderStatus
SENDING_NOTE = "journaled before send"
# What a send may start from: approved, or journaled as SENDING / UNKNOWN and resubmitted.
SENDABLE = frozenset({S.APPROVED, S.SENDING, S.UNKNOWN})


class OrderSending(OrderGate):
    """Sending and the ack watch, with the order families' bookkeeping submission and approval share."""

    # -- families ------------------------------------------------------------------------------

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

    # -- sending -------------------------------------------------------------------------------

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

        Raises:
            BrokerError: Trading is refused for this account (:attr:`refusal`): nothing was written.
        """
        if self.refusal:
            raise BrokerError(f"cancel of {order.order_ref} not sent: trading refused: {self.refusal}; cancel it in "
                              "TWS", "Trading refused")
        self.broker.cancel(order.broker_id)  # type: ignore[arg-type]
        self.messages_sent("cancel", 1, order.order_ref)
        self.cancels_asked.add(order.order_ref)

    def _why_not_placed(self, order: Order, past_halt: bool) -> str | None:
        """Why a family whose SENDING is durable must not be placed now; ``None`` when it may."""
        ticket = order.ticket
        if self.stopping:
            return f"the engine stopped before send: {NOT_SENT}"
        if self.refusal:  # refused while the journal was awaited: the gate denies every order after it
            return f"trading refused: {self.refusal}: {NOT_SENT}"
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
        """A journal write failed: the engine performs the journal-failure trigger
        (:meth:`~tui_trader.engine.engine.Engine.on_journal_failure`)."""
        raise NotImplementedError

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
        """Schedule a reconciliation with the broker (:class:`~tui_trader.engine.reconcile.Reconciliation`)."""
        raise NotImplementedError
