"""Kill switch actions, cancel-all with verification, flatten and reduce-only.

``kill`` is synchronous: the trading state is HALTED, the cancels are written to the broker's
socket and every pending approval is denied before it returns, in that order — nothing is
published, journaled or awaited before the cancels. Persisting the latch, verifying the cancels
and reporting run as a task afterwards.

The operator's kill cancels every working order in scope; an automatic trip keeps the positions'
protective orders working and cancels only what can add exposure (see :mod:`tui_trader.risk.kill_switch`).
Which orders those are is the risk layer's decision (:func:`~tui_trader.risk.kill_switch.kill_cancels`):
the kill, the owed cancels after an outage and the operator's cancel-all write exactly its list, and each
verification checks the cancels it follows against that same decision: what it reports kept is exactly what
was decided kept, whatever the latched state has become since (an operator's kill landing while an automatic
trip's cancels are checked is verified by its own check, which keeps nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.events import Event, KillReport, OperatorAction
from tui_trader.domain.orders import DRY_RUN_NOTE, Order, OrderTicket
from tui_trader.domain.portfolio import held_words, unprotected_positions
from tui_trader.engine.order_path import OrderPath
from tui_trader.engine.snapshots import FlattenPreview
from tui_trader.errors import BrokerError, SafetyError, TraderError
from tui_trader.risk.flatten import quote_warnings
from tui_trader.risk.kill_cancels import KillCancels
from tui_trader.risk.kill_switch import (
    KillAction,
    KillDecision,
    KillTrigger,
    remaining_text,
)
from tui_trader.risk.limits import CancelScope

log = logging.getLogger(__name__)

PROTECTION_WAIT_ACKS = 5
"""An exit waits this many acknowledgement timeouts (after the cancel's own) for its symbol's protective
orders to end before it is given up: sent while a stop may still work, both could fill."""
S = OrderStatus


class KillOps(OrderPath):
    """Kill switch, cancel-all, flatten and the trading-state commands."""

    kill_cancels_owed = False
    """A kill was engaged while disconnected: its cancels go out when the connection is back."""

    def publish_all(self, events: tuple[Event, ...] | list[Event]) -> None:
        """Publish several events in order."""
        for event in events:
            self.publish(event)

    # -- kill ----------------------------------------------------------------------------------

    def kill(self, reason: str, by: str = "operator", *, operator: bool = True) -> None:
        """Engage the kill switch: HALTED now; cancels and verification scheduled (whoever engaged it)."""
        self.engage_kill(reason, by, KillTrigger.MANUAL)

    def take_latched_kill(self, reason: str, by: str) -> None:
        """Act on a kill ``tui-trader kill`` latched in the journal (the :class:`KillStateWatcher` calls this): as
        the operator's kill, but recorded as acting on that latch (:class:`KillLatchTaken`), not as a second kill:
        the command journaled the kill and its operator action itself."""
        self.engage_kill(reason, by, KillTrigger.MANUAL, latched=True)

    def engage_kill(self, reason: str, by: str, trigger: KillTrigger, flatten: bool = False, *,
                    latched: bool = False) -> None:
        """HALTED, then the cancels on the socket, then pending approvals denied; verify and persist later.

        The state flip comes first and the cancels next, synchronously: no event is published, no
        journal record written and nothing awaited before the cancels leave (a spawned task would
        wait behind whatever the loop has queued — under a tick storm, tens of milliseconds). The
        latch is in memory from the flip on; persisting it follows the cancels. ``latched``: engaged on a
        kill latched out of band (:meth:`take_latched_kill`).
        """
        decision = self.risk.engage_kill(by, reason, self.now(), self.orders.working(), trigger, flatten,
                                         taken=latched)
        self._send_cancels(decision.cancels)
        if not self.broker.is_connected:
            self.kill_cancels_owed = True  # nothing could be sent: connect_and_sync sends them
        self.publish_all(decision.events)
        self.reject_all_pending("kill switch engaged")
        for order in self.orders.with_status(S.APPROVED):
            self._move_family(order.order_ref, S.CANCELLED, "kill switch engaged before send")
        self.spawn(self._after_kill(decision), "kill-switch")

    async def _after_kill(self, decision: KillDecision) -> None:
        await self.persist_kill_state()
        await self._verify_kill(decision.cancels)  # as they were sent (a Ctrl+K since verifies its own)
        if KillAction.FLATTEN in decision.actions:
            try:
                await self.flatten(preview=False, by=decision.state.by or "kill_switch")  # the kill's, not yours
            except BrokerError as exc:
                self.alert(AlertLevel.CRITICAL, "kill_switch", f"positions NOT flattened: {exc.message}",
                           kind="flatten_failed")

    async def send_owed_kill_cancels(self) -> None:
        """The kill was engaged while disconnected (Ctrl+K in an outage, the disconnect trigger): its
        cancels go out now that the connection is back, then they are verified, as at any kill."""
        self.kill_cancels_owed = False
        if not self.refusal:  # refused: _send_cancels says that they are not sent
            self.alert(AlertLevel.WARNING, "kill_switch", "the kill switch was engaged while disconnected: its "
                       "cancels are sent now", kind="kill_cancels_sent_late")
        cancels = self.risk.cancels(self.orders.working(), keep_protection=self._keeps_protection)
        self._send_cancels(cancels)
        await self._verify_kill(cancels)

    async def _verify_kill(self, cancels: KillCancels) -> None:
        """Verify a kill's ``cancels`` and say the outcome (the protective orders they keep are not left behind).

        The kill switch's verification names whatever still works, the orders only the broker holds too: one
        critical alert (``kill_verify``), not a second of the cancel check's own for the same orders (each
        critical alert goes to the operator's phone). While trading is refused, none: nothing was sent, and the
        alert saying so named what still works (:meth:`_say_cancels_refused`)."""
        report = await self._verify_cancelled(cancels.refs, kept_by=cancels, alert=False)
        self._publish_verification(report, cancels, said=bool(self.refusal))

    async def verify_latched_kill(self) -> None:
        """With the kill latched from before this connection (a restart, a reconnect): ask the broker what
        still works in the kill's scope and say it, as after a kill's cancels. Nothing is cancelled:
        an operator's Ctrl+K (engaging again) sends the cancels. The protective orders an automatic trip
        keeps are said as kept, not as left working."""
        # Nothing is sent: what the latched kill would cancel and keep as the check begins is the decision it
        # follows (a Ctrl+K while the broker is asked decides anew, and that kill's own check is the one to show).
        cancels = self.risk.cancels(self.orders.working(), keep_protection=self._keeps_protection)
        at_broker = await self._broker_working(own_only=cancels.keeps_protection)
        self._publish_verification(KillReport((), tuple(at_broker or ()), checked=at_broker is not None), cancels)

    def _killed_in_full(self) -> bool:
        """The kill switch is engaged and cancels everything in scope (not an automatic trip keeping the
        positions' protective orders, which an operator's kill still has to cancel)."""
        return self.risk.kill_state.engaged and not self._keeps_protection

    def _publish_verification(self, report: KillReport, cancels: KillCancels, *, said: bool = False) -> None:
        """The verification of a kill's ``cancels``: always an event, and a critical alert naming whatever still
        works that they do not keep (the orders the engine tracks as working, and those in ``report.remaining``
        or ``report.kept`` it does not track), unless what still works is ``said`` already."""
        working = self.orders.working()
        tracked = {o.order_ref for o in working}
        # The console's banner must show the untracked ones too.
        at_broker = [r for r in (*report.remaining, *report.kept) if r not in tracked]
        verification = self.risk.verify_kill(cancels, report.cancelled, working, self.now(), at_broker,
                                             report.checked, said=said)
        self.publish_all(verification.events)

    async def persist_kill_state(self) -> None:
        """Write the latched kill state to the journal now; never over a kill ``tui-trader kill`` latched there that
        the engine has not acted on yet (its watcher will, within a poll; a stop keeps it for the next start)."""
        if self.journal is None:
            return
        seen = self.kill_watcher.seen if self.kill_watcher is not None else frozenset()
        try:
            await self.journal.save_kill_state(self.risk.kill_state.to_dict(), self.now(), seen_out_of_band=seen)
        except Exception as exc:  # noqa: BLE001 - a journal failure must halt, not crash the kill
            self.on_journal_failure(exc)

    def reset_kill(self, reason: str, by: str = "operator", confirm_same_day: bool = False) -> None:
        """Release the latched kill switch with a typed reason (raises SafetyError when refused).

        Refused while the kill switch's trigger file is still there: the next tick would engage it again
        (the reset seemed not to take, and nothing said why).
        """
        if self.refusal:
            raise SafetyError(f"trading is refused for this run ({self.refusal}): trading stays HALTED, and the kill "
                              "switch latched. Restart in the right mode with the right account, and reset it there",
                              "Kill switch reset refused")
        trigger = self.config.trigger_file
        if trigger is not None and trigger.exists():
            raise SafetyError(f"the trigger file {trigger} is still there and would engage the kill switch again at "
                              "once: remove it, then reset", "Kill switch reset refused")
        decision = self.risk.reset_kill(by, reason, self.now(), confirm_same_day)
        if not decision.accepted:
            raise SafetyError(decision.message, "Kill switch reset refused")
        self.kill_cancels_owed = False
        self.publish_all(decision.events)
        self.spawn(self.persist_kill_state(), "kill-reset-persist")
        self._say_unprotected_after_reset()

    def _say_unprotected_after_reset(self) -> None:
        """Trading resumes: a WARNING names the positions no protective stop covers at the broker (the
        operator's kill cancelled their stops), as the reset's dialog did. Nothing puts them back by itself:
        the kill cancelled them on purpose, and an order placed unasked as trading resumes is not what a reset
        says it does. Without this, strategies traded again beside positions with no stop, and nothing said so."""
        left = unprotected_positions(self.account_snapshot())
        if left:
            self.alert(AlertLevel.WARNING, "kill_switch", f"trading resumed with no protective stop at the broker "
                       f"for: {', '.join(left)}; place stops or flatten them", kind="unprotected_after_reset")

    def reduce_only(self, on: bool, reason: str, by: str = "operator") -> None:
        """Enter (or leave) REDUCING."""
        before = self.trading_state
        target = TradingState.REDUCING if on else TradingState.ACTIVE
        if self.refusal:
            raise SafetyError(f"trading is refused for this run: {self.refusal}; it stays HALTED (restart in the "
                              "right mode with the right account)", "Refused")
        if before is TradingState.HALTED and self.risk.kill_state.engaged:
            raise SafetyError("the kill switch is engaged: reset it first", "Refused")
        if self.set_trading_state(target, by, reason):
            self.publish(OperatorAction(self.now(), by, "reduce_only" if on else "resume", reason,
                                        before.value, target.value))

    # -- cancel all ----------------------------------------------------------------------------

    async def cancel_all(self) -> KillReport:
        """Cancel every working order in the configured scope, then verify none remain."""
        self.reject_all_pending("cancel all")
        if self.refusal:
            raise BrokerError(f"cancel all not sent: trading refused: {self.refusal}; cancel the orders in TWS",
                              "Trading refused")
        cancels = self.risk.cancels(self.orders.working())
        self._send_cancels(cancels)
        return await self._verify_cancelled(cancels.refs, kept_by=cancels)

    def _send_cancels(self, cancels: KillCancels) -> None:
        """Write ``cancels`` to the broker's socket, exactly as the risk layer listed them
        (:func:`~tui_trader.risk.kill_switch.kill_cancels`): one global cancel, or each order in turn.

        Nothing is written while disconnected (the kill owes them then: :meth:`send_owed_kill_cancels`), nor while
        trading is refused for the account (:attr:`refusal`): said in a CRITICAL alert, the orders stay working.
        """
        if self.refusal:
            self._say_cancels_refused(cancels)
            return
        if self.broker.is_connected and cancels.global_cancel:
            self.broker.global_cancel()
        elif self.broker.is_connected:
            for ref in cancels.refs:
                self.broker.cancel(self.orders.orders[ref].broker_id)  # type: ignore[arg-type]
        self.messages_sent("cancel", max(len(cancels.refs), 1))
        self.cancels_asked.update(cancels.refs)

    def _say_cancels_refused(self, cancels: KillCancels) -> None:
        """The kill's ``cancels`` were not sent: trading is refused for this account. One critical alert says that
        and the orders still working (the kill's verification raises none of its own: :meth:`_verify_kill`)."""
        n = len(cancels.refs)
        orders = f"order{'s' if n != 1 else ''}"
        what = ("its global cancel NOT sent" if cancels.global_cancel else
                f"its cancel of {n} {orders} NOT sent" if n else "nothing sent")
        working = [self.orders.orders[r] for r in cancels.refs]
        left = (f"{n} {orders} still working at the broker: "
                f"{', '.join(f'{o.order_ref} {o.ticket.side} {o.remaining:g} {o.symbol}' for o in working)}: manage "
                "them in TWS" if n else "whatever works at the broker still works: manage it in TWS")
        self.alert(AlertLevel.CRITICAL, "kill_switch", f"kill switch latched, but {what}: trading is refused for this "
                   f"account ({self.refusal}); {left}, and restart in the right mode with the right account",
                   kind="kill_cancels_refused")

    async def _verify_cancelled(self, refs: Sequence[str], symbols: set[str] | None = None,
                                source: str = "kill_switch", alert: bool = True,
                                kept_by: KillCancels | None = None) -> KillReport:
        """Wait for ``refs`` to end, then ask the broker what still works (only ``symbols``, if given).

        ``source`` names what cancelled (the kill switch, a flatten, a position close) in the alerts.
        ``kept_by``: the kill's cancels as decided; the orders still working they keep
        (:meth:`~tui_trader.risk.kill_switch.KillCancels.keeps`: an automatic trip's protective orders) were
        kept on purpose, so they are not remaining, and only this client's orders are asked for when they keep
        the positions' protection.
        """
        if not self.refusal:  # refused: none was sent
            await self._while_orders(lambda: self._still_working(refs), self.config.ack_timeout_s)
        own_only = kept_by is not None and kept_by.keeps_protection
        at_broker = await self._broker_working(symbols, source, own_only=own_only)
        local = self._still_working(refs)
        kept = kept_by.kept_of(self.orders.working(), at_broker or ()) if kept_by is not None else ()
        remaining = tuple(r for r in dict.fromkeys([*local, *(at_broker or ())]) if r not in kept)
        cancelled = tuple(r for r in refs if r not in remaining)
        if alert:
            self._say_still_working(remaining, source)
        return KillReport(cancelled, remaining, checked=at_broker is not None, kept=kept)

    def _say_still_working(self, remaining: Sequence[str], source: str) -> None:
        """A critical alert naming the orders ``remaining`` after ``source``'s cancels (none: nothing said)."""
        if remaining:
            unknown = [r for r in remaining if (o := self.orders.get(r)) and o.status is OrderStatus.UNKNOWN]
            text = remaining_text(remaining, unknown, {}, "still working after cancel")
            self.alert(AlertLevel.CRITICAL, source, text, kind="cancel_unverified")

    def _still_working(self, refs: Sequence[str]) -> list[str]:
        # An order no longer in memory finished long ago (only finished orders are forgotten).
        return [r for r in refs if (o := self.orders.get(r)) is not None and o.status.is_working]

    async def _broker_working(self, symbols: set[str] | None = None, source: str = "kill_switch",
                              own_only: bool = False) -> list[str] | None:
        """The refs of the orders the broker says still work in scope (``own_only``: this client's, as an
        automatic trip cancels whatever the scope); None when it could not be asked."""
        if not self.broker.is_connected:
            return None
        scope_all = self.risk.limits.kill_cancel_scope is CancelScope.GLOBAL and not own_only
        try:
            reports = await self.broker.open_orders(all_clients=scope_all)
        except (TimeoutError, ConnectionError) as exc:
            self.alert(AlertLevel.ERROR, source, f"could not verify at the broker: {exc!r}")
            return None
        live = [r for r in reports if (r.status is None or r.status.is_working)
                and (symbols is None or r.symbol in symbols)]
        # Named as tracked here, by permanent id first: an order adopted without a ref is broker-<permId>, one
        # placed under another's orderRef <orderRef>#<permId>; so an automatic trip's kept adopted stop is counted
        # kept, not "still working after cancel", and two orders under one orderRef are two.
        tracked = {o.perm_id: o.order_ref for o in self.orders.working() if o.perm_id}
        return [tracked.get(r.perm_id) or r.order_ref or f"broker#{r.broker_id}" for r in live]

    # -- flatten -------------------------------------------------------------------------------

    def flatten_tickets(self) -> tuple[OrderTicket, ...]:
        """Market orders closing every open position."""
        now = self.now()
        return tuple(
            OrderTicket(sym, Side.SELL if pos.quantity > 0 else Side.BUY, abs(pos.quantity), OrderType.MKT,
                        strategy="flatten", reason="flatten", reduce_only=True, created_at=now,
                        signal_price=self.market.mark(sym))
            for sym, pos in sorted(self.portfolio.open_positions().items()))

    async def flatten(self, preview: bool = True, symbol: str | None = None,
                      expected: tuple[OrderTicket, ...] | None = None, by: str = "operator") -> FlattenPreview:
        """Preview (or, with ``preview=False``, send) the orders that close every position (or ``symbol``'s).

        Confirmed by the operator on the preview, so no approval is asked again: the symbols'
        working orders (their stops and targets) are cancelled and verified first, then each
        closing order is re-checked (reduce-only) and sent. ``expected``: the preview the operator
        confirmed; nothing is sent when the positions have changed since (a fill while the dialog
        was open made SELL 10 into SELL 100). ``by``: who asked, as the journal records it, with
        what was held before and what became of each closing order after. A closing order not sent
        is said in an alert naming the symbol and why (:meth:`_say_flatten_outcome`).

        Raises:
            SafetyError: ``expected`` is not what would be sent now.
            BrokerError: Not connected: no protective order could be cancelled, nothing was sent.
        """
        tickets = tuple(t for t in self.flatten_tickets() if symbol in (None, t.symbol))
        result = FlattenPreview(tickets, {t.symbol: self.market.mark(t.symbol) for t in tickets},
                                self._flatten_warnings(tickets))
        if preview or (not tickets and expected is None):
            return result
        what, held = f"flatten {symbol}" if symbol else "flatten all positions", _held_text(tickets)
        outcomes: dict[str, str] = {}
        try:
            if expected is not None and _plan(expected) != _plan(tickets):
                raise SafetyError(f"the positions changed since the preview: it showed {_plan_text(expected)}, "
                                  f"now it would be {_plan_text(tickets)}. Nothing was sent: flatten again to see "
                                  "the orders as they are", "Flatten not sent")
            await self._flatten_tickets(tickets, outcomes)
        except TraderError as exc:  # said by whoever asked (the console, the kill switch, the schedule)
            unsent = [t.symbol for t in tickets if t.symbol not in outcomes] if tickets else [""]  # "": none held
            outcomes.update((sym, f"NOT sent: {exc.message}") for sym in unsent)
            raise
        finally:
            after = "; ".join(f"{sym} {outcome}".lstrip() for sym, outcome in outcomes.items())
            self.publish(OperatorAction(self.now(), by, "flatten", what, held, after))
        return result

    def _flatten_warnings(self, tickets: tuple[OrderTicket, ...]) -> tuple[str, ...]:
        """The preview's warnings: a symbol with no quote, or one older than the gate's quote age limit (the
        market data stall's when that is off)."""
        max_age = self.risk.limits.max_quote_age_s or self.config.market_data_stale_s
        return quote_warnings((t.symbol for t in tickets), self.market.view(), self.now(), max_age)

    async def _flatten_tickets(self, tickets: tuple[OrderTicket, ...], outcomes: dict[str, str]) -> None:
        """Cancel the symbols' protection, then send each closing order; ``outcomes`` gets what became of each, once
        the broker has answered it (a rejection for margin was recorded as "sent")."""
        # A closing order the gate would deny keeps its symbol's protection: it is denied as it is.
        denied = {t.symbol for t in tickets if self.exit_denied(t, past_halt=True) is not None}
        await self._cancel_symbols({t.symbol for t in tickets} - denied, "flatten")
        earlier = {o.order_ref for t in tickets for o in self.exits_pending(t.symbol)}  # as the cancels went
        sent: dict[str, str] = {}
        for sym in [t.symbol for t in tickets]:
            if sym not in denied and (why := await self._protection_ended(sym, f"flatten of {sym}", earlier=earlier)):
                outcomes[sym] = f"NOT sent: {why}"  # a stop whose cancel is unconfirmed may have filled: said
                continue
            # As the position is now: a stop may have filled as it was cancelled.
            ticket = next((t for t in self.flatten_tickets() if t.symbol == sym), None)
            if ticket is None:
                outcomes[sym] = "already flat"
                self.exit_after_cancel(sym, None, f"flatten of {sym}")  # nothing held: nothing to place again
                continue
            order = self.orders.create(ticket, S.APPROVED, self.now(), note="flatten (confirmed)")
            self.publish_order(order)
            await self.send(order.order_ref, past_halt=True)
            self.flattens_unsaid[order.order_ref] = False
            self.exit_after_cancel(sym, order.order_ref, f"flatten of {sym}")
            sent[sym] = order.order_ref
        await self._flatten_answered(list(sent.values()))
        outcomes.update((sym, self._say_flatten_outcome(ref)) for sym, ref in sent.items())

    async def _flatten_answered(self, refs: list[str]) -> None:
        """Wait until the broker has answered each of ``refs`` (none is still on its way to it), at most an
        acknowledgement timeout: a rejection comes as its answer."""
        await self._while_orders(lambda: any(self.orders.orders[r].status in (S.APPROVED, S.SENDING) for r in refs),
                                 self.config.ack_timeout_s)

    async def _while_orders(self, busy: Callable[[], object], timeout_s: float) -> None:
        """Wait while ``busy()`` is true (non-empty), looked at again at each order change, ``timeout_s`` at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while busy() and loop.time() < deadline:
            self.order_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.order_changed.wait(), deadline - loop.time())

    def _say_flatten_outcome(self, order_ref: str) -> str:
        """What became of a flatten's closing order: sent, or not (denied by the gate, stopped before the wire,
        rejected by the broker), said in an ERROR alert then: the orders pane's row alone went unseen (QA: a flatten
        denied for a stale quote left the position open, said nowhere else), unless the CRITICAL alert of its
        protection placed again said it already. A dry run's is what the mode asked for."""
        order, said = self.orders.orders[order_ref], self.flattens_unsaid.pop(order_ref, False)
        words = f"{order.ticket.side.value} {order.ticket.quantity:g}"
        if order.status not in (S.REJECTED, S.CANCELLED, S.EXPIRED):
            return f"{words} sent ({order_ref})"
        why = order.history[-1].note if order.history else order.status.value
        if why == DRY_RUN_NOTE:
            return f"{words} not sent: {why}"
        at_broker = any(h.status is S.SENDING for h in order.history) and order.broker_id is not None
        outcome = f"{order.status.value} by the broker" if at_broker else "NOT sent"
        if not said:
            self.alert(AlertLevel.ERROR, "flatten", f"flatten {outcome} for {order.symbol}: {why}; the position "
                       f"{self.portfolio.quantity(order.symbol):g} is still open", kind="flatten_not_sent")
        return f"{words} {outcome} ({order_ref}): {why}"

    async def send_approved(self, order_ref: str) -> None:
        """An approved exit first cancels its symbol's protection (kept in force while the exit
        waited, so a rejected or expired exit leaves the position protected), then is re-checked
        and sent, unless the position changed meanwhile (its stop filled, say). One that does not close
        the position after its protection was cancelled has it placed again (:meth:`exit_after_cancel`), also one
        that lapsed meanwhile (the run ended): it was only said in a WARNING, the position left with no stop and its
        record kept for no exit.

        The exit is given the protection's record before it is sent: a send may wait for the journal, and a flatten
        of the symbol meanwhile takes the record of an exit it finds on its way, its own end deciding. Given after,
        the record was dropped by that flatten, which found nothing of its own to keep (the stop was gone): both
        rejected, the position was left with no stop at the broker, and nothing said so."""
        order = self.orders.orders[order_ref]
        ticket = order.ticket
        if (self.replaces_protection(ticket, order_ref) and self.protection_working(ticket.symbol, order_ref)
                and self.exit_denied(ticket, order_ref) is None):  # one the gate denies keeps the protection
            if why := await self.clear_protection(ticket.symbol, f"exit {order_ref}", order_ref):
                self._not_sent(order_ref, why)
                return
            status = self.orders.orders[order_ref].status
            self.exit_after_cancel(ticket.symbol, order_ref, f"exit {order_ref}")  # before the send's wait
            if status is not S.APPROVED and self.stopping:  # lapsed: the engine stops, nothing is placed again
                self.alert(AlertLevel.WARNING, "close_position",
                           f"exit {order_ref} not sent (it is {status.value}) after {ticket.symbol}'s protective "
                           "orders were cancelled for it: the position is left without them",
                           kind="exit_not_sent")
                return
            held = self.portfolio.quantity(ticket.symbol)
            if status is S.APPROVED and (ticket.side.sign * held >= 0 or abs(held) + 1e-9 < ticket.quantity):
                why = f"position in {ticket.symbol} is {held:g} after its protection was cancelled: exit not sent"
                self._not_sent(order_ref, why)
                self.alert(AlertLevel.WARNING, "close_position", why, kind="exit_not_sent")
            elif status is S.APPROVED:
                await self.send(order_ref)
            return
        await self.send(order_ref)

    def exit_after_cancel(self, symbol: str, exit_ref: str | None, what: str, why: str = "") -> None:
        """``symbol``'s protection was cancelled for an exit, ``exit_ref`` (``None``: not sent at all, ``why``);
        the protection part places it again when the exit does not close the position."""

    @functools.cached_property
    def flattens_unsaid(self) -> dict[str, bool]:
        """A flatten's closing orders whose outcome it has not said yet, by ref: whether a CRITICAL alert of the
        protection placed again has said their end (the flatten says it once). Only until the flatten says it: an
        end after that is the protection's alone (kept for the flatten to read, each stayed for the session)."""
        return {}

    async def clear_protection(self, symbol: str, what: str, order_ref: str | None = None) -> str:
        """Cancel ``symbol``'s working orders for ``what`` (an exit) and wait until its protective orders
        have ended (``order_ref``, the exit itself, not counted). ``''`` when they have; otherwise why the
        exit must not go, already said in an alert:

        - not connected: nothing was cancelled, the position keeps its protection (a warning);
        - a cancel still unconfirmed after :data:`PROTECTION_WAIT_ACKS` acknowledgement timeouts: the stop
          and the exit could both fill (a critical alert; reconciliation is asked to settle the orders);
        - another exit's closing order made meanwhile: the position is left to it (nothing said).
        """
        try:
            await self._cancel_symbols({symbol}, "close_position")  # its protection said below if it stays so
        except BrokerError as exc:
            self.alert(AlertLevel.WARNING, "close_position", f"{what} not sent: {exc.message}", kind="exit_not_sent")
            return exc.message
        return await self._protection_ended(symbol, what, order_ref, yields=True)

    async def _protection_ended(self, symbol: str, what: str, order_ref: str | None = None, *,
                                yields: bool = False, earlier: set[str] | None = None) -> str:
        """Wait until ``symbol``'s protective orders, cancelled for ``what``, have ended (another exit of it too):
        ``''``; otherwise (not ended after :data:`PROTECTION_WAIT_ACKS` acknowledgement timeouts) why ``what`` must
        not go, said in a critical alert (:meth:`_unended_words`). Given up, its protection is placed again should
        the cancel be confirmed later with the position left bare (:meth:`exit_after_cancel`).

        ``yields`` (an exit's, not the operator's flatten): an exit of the symbol whose closing order is made meanwhile
        (one waiting beside it for the same stop's end looked first) is left to. ``what`` is not sent beside it (the
        position closed twice), nor given up waiting on it as on protection (a CRITICAL alert and a reconciliation for
        an order resting, nobody bidding, that closes the position); it is handed ``what``'s record, its end deciding,
        and nothing is said. An exit there before is still waited on, and a flatten waits on any: it closes what that
        one leaves held (rejected, say). Still working when the flatten gives up waiting, an exit made as it waited is
        left to as well, said in a WARNING: it was given up with a CRITICAL alert and a reconciliation, its words
        "not asked to cancel: not at the broker yet when the cancels went" for an order made after them. ``earlier``:
        the exits there before, noted as the cancels went (a flatten of several symbols waits for one after another:
        noted as it came to each, an exit made as it waited for the first counted as there before); by default now."""
        earlier = {o.order_ref for o in self.exits_pending(symbol)} if earlier is None else earlier

        def made() -> list[Order]:
            return [o for o in self.exits_pending(symbol) if o.status.is_working and o.order_ref not in earlier]

        await self._while_orders(lambda: not (yields and made()) and self.protection_working(symbol, order_ref),
                                 PROTECTION_WAIT_ACKS * self.config.ack_timeout_s)
        exits, left = made(), self.protection_working(symbol, order_ref)
        if exits and (yields or {o.order_ref for o in left} <= {o.order_ref for o in exits}):  # nothing else works
            self.exit_after_cancel(symbol, exits[0].order_ref, f"exit {exits[0].order_ref}")
            if yields:
                return f"left to {symbol}'s exit {exits[0].order_ref}, made as it waited"
            said = f"left to {symbol}'s exit {exits[0].order_ref}, made as it waited and still working"
            self.alert(AlertLevel.WARNING, "close_position", f"{what} not sent: {said}; the position closes as it "
                       "fills", kind="exit_not_sent")
            return said
        if not left:
            return ""
        said, why = self._unended_words(symbol, left)
        self.alert(AlertLevel.CRITICAL, "close_position", f"{what} not sent: {said}", kind="exit_not_sent")
        self.request_reconcile(f"{symbol}: {why}")
        self.exit_after_cancel(symbol, None, what, why)
        return said

    def _unended_words(self, symbol: str, left: list[Order]) -> tuple[str, str]:
        """What an exit of ``symbol`` waited on in vain (``left``: its reduce-only orders still working), as the
        alert giving the exit up says it, and why the exit did not go, as the alert of its protection placed again
        says it. Its protective orders; or another exit of the symbol (a closing order beside it could close the
        position twice, but it is no protection: said as one, the alert named orders the position did not have), and
        whether the broker was asked to cancel it (one not at the broker yet as the cancels went was not)."""
        exits = {o.order_ref for o in self.exits_pending(symbol)}
        unasked = [o.order_ref for o in left if o.order_ref not in self.cancels_asked]
        if not unasked and not exits.intersection(o.order_ref for o in left):
            return (f"{symbol}'s protective orders are not confirmed cancelled (the broker has not answered); "
                    "reconciliation will settle them, and the position may be left without them",
                    "its protective orders' cancel was not confirmed in time")
        names = " and ".join(filter(None, (
            _named("protective order", [o.order_ref for o in left if o.order_ref not in exits]),
            _named("exit", [o.order_ref for o in left if o.order_ref in exits]))))
        unanswered = [o.order_ref for o in left if o.order_ref not in unasked]
        not_asked = "not asked to cancel: not at the broker yet when the cancels went"
        if len(left) == 1:
            return (f"{symbol}'s {names} has not ended ("
                    f"{'the broker has not answered its cancel' if unanswered else not_asked}); reconciliation will "
                    "settle it", f"its {names} had not ended in time")
        how = "; ".join(filter(None, (
            f"the broker has not answered the cancel of {', '.join(unanswered)}" if unanswered else "",
            f"{', '.join(unasked)} {not_asked}" if unasked else "")))
        return (f"{symbol}'s {names} have not ended ({how}); reconciliation will settle them",
                f"its {names} had not ended in time")

    async def _cancel_symbols(self, symbols: set[str], source: str, alert: bool = True) -> None:
        """Cancel working orders (protective stops) of ``symbols`` so they cannot overfill.

        ``source`` names the caller in the verification's alerts (``flatten``, ``close_position``). With ``alert``,
        one names what still works in ``symbols`` but their protective orders: the caller waits on those longer and
        says them if they have not ended then (:meth:`_protection_ended`), once (said here too, a cancel the broker
        had not answered was two critical alerts for one order). The orders only the broker holds there (placed in
        TWS) are said here: nothing else says them, and they could fill beside the closing order.

        Raises:
            BrokerError: Not connected (or the link dropped mid-way): what follows (the closing orders)
                must not go, and cannot.
        """
        working: list[Order] = [o for o in self.orders.working()
                                if o.symbol in symbols and o.broker_id is not None]
        refused = BrokerError(f"{source} of {', '.join(sorted(symbols))}: not connected to the broker, so its "
                              "protective orders could not be cancelled and no closing order was sent")
        if not self.broker.is_connected:
            raise refused
        try:
            for order in working:
                self.cancel_at_broker(order)
        except ConnectionError:  # the link dropped mid-way
            raise refused from None
        report = await self._verify_cancelled([o.order_ref for o in working], symbols, source, alert=False)
        if alert:
            protection = {o.order_ref for symbol in symbols for o in self.protection_working(symbol)}
            self._say_still_working([r for r in report.remaining if r not in protection], source)


def restored_kill_text(kill: dict[str, Any], time_zone: str) -> str:
    """The kill switch latched before this start, as its alert says it: since when, in the console's zone and to
    the second (``2026-11-24 23:53:07 EST``, not the journal's UTC with microseconds), by whom, and why."""
    try:
        since = datetime.fromisoformat(str(kill.get("engaged_at"))).astimezone(ZoneInfo(time_zone))
    except (ValueError, KeyError):  # a latch without its time, or a zone not known: as the journal holds it
        when = str(kill.get("engaged_at") or "an unknown time")
    else:
        when = f"{since:%Y-%m-%d %H:%M:%S %Z}"
    return f"kill switch still engaged from {when} by {kill.get('by') or 'unknown'}: {kill.get('reason')}"


def _named(kind: str, refs: list[str]) -> str:
    """``exit X`` or ``exits X, Y`` (``""``: none)."""
    return f"{kind}{'s' if len(refs) > 1 else ''} {', '.join(refs)}" if refs else ""


def _plan(tickets: tuple[OrderTicket, ...]) -> list[tuple[str, Side, float]]:
    return sorted((t.symbol, t.side, t.quantity) for t in tickets)


def _held_text(tickets: tuple[OrderTicket, ...]) -> str:
    """The positions closing ``tickets`` close, as the operator action records them: ``SPY LONG 9``."""
    return ", ".join(held_words(t.symbol, -t.side.sign * t.quantity) for t in tickets)


def _plan_text(tickets: tuple[OrderTicket, ...]) -> str:
    return ", ".join(f"{side} {qty:g} {sym}" for sym, side, qty in _plan(tickets)) or "nothing"
