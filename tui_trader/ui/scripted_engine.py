"""A scripted ``EngineHandle`` for the console's tests, screenshots and benchmark: no engine, no broker.

:class:`ScriptedEngine` keeps its whole state in one frozen ``EngineSnapshot`` and answers every
``EngineHandle`` command by replacing it, recording each call; the scenarios it starts from are in
:mod:`~tui_trader.ui.demo`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from tui_trader.domain.enums import OrderStatus, Side, TradingState
from tui_trader.domain.events import (
    AlertRaised,
    ApprovalRequested,
    ApprovalResolved,
    Event,
    KillChecked,
    KillReport,
    KillSwitchEngaged,
    KillSwitchReset,
    TradingStateChanged,
)
from tui_trader.domain.market import Instrument, Quote
from tui_trader.domain.orders import Order, OrderTicket, WhatIf
from tui_trader.domain.verdicts import CheckResult, RiskVerdict
from tui_trader.engine.bus import EventBus, Subscription
from tui_trader.engine.snapshots import (
    EngineSnapshot,
    FlattenPreview,
    OrderTrace,
    PendingApproval,
    TestNotificationResult,
)
from tui_trader.errors import BrokerError, SafetyError
from tui_trader.risk.checks import ORDER_NOTIONAL
from tui_trader.risk.kill_switch import KillTrigger, engaged_alert, released_alert
from tui_trader.ui.demo import make_order, scripted_trace


class ScriptedEngine:
    """An ``EngineHandle`` over a scripted state; records every call in ``calls``."""

    def __init__(self, state: EngineSnapshot, *, start_events: list[Event] | None = None) -> None:
        self.state = state
        self.bus = EventBus()
        self.calls: list[tuple[object, ...]] = []
        self.start_events = list(start_events or [])
        self.fail_start: BaseException | None = None
        self.refuse_same_day_reset = True
        self.flatten_sent = False
        self.journal_path = "/var/lib/tui-trader/journal.sqlite"
        """Where the scripted traces say the journal is (exports go next to it)."""
        self._next = 300

    def _publish(self, event: Event) -> None:
        self.bus.publish(event)

    async def start(self) -> None:
        self.calls.append(("start",))
        if self.fail_start is not None:
            raise self.fail_start
        for event in self.start_events:
            self._publish(event)

    async def stop(self) -> None:
        self.calls.append(("stop",))

    def preview(self, ticket: OrderTicket) -> RiskVerdict:
        self.calls.append(("preview", ticket))
        q = self.state.quotes.get(ticket.symbol)
        notional = ticket.quantity * ticket.price_for_notional(q.last if q else math.nan)
        ok = notional <= 50_000 if not math.isnan(notional) else False
        check = CheckResult(ORDER_NOTIONAL, ok, notional, 50_000, 50_000 - notional,
                            message="" if ok else "order too large", unit="$")
        return RiskVerdict(ok, (check, CheckResult("order_quantity", True, ticket.quantity, 1000,
                                                   1000 - ticket.quantity, unit="qty")))

    async def what_if(self, ticket: OrderTicket) -> tuple[WhatIf | None, str]:
        self.calls.append(("what_if", ticket))
        q = self.state.quotes.get(ticket.symbol)
        notional = ticket.quantity * ticket.price_for_notional(q.last if q else math.nan)
        return WhatIf(init_margin_change=round(notional * 0.25, 2), commission=1.0), ""

    UNKNOWN_SYMBOLS = frozenset({"ZZZZ"})
    """Symbols :meth:`watch` refuses, as a broker does one it has no contract for."""

    async def watch(self, symbol: str) -> Instrument:
        self.calls.append(("watch", symbol))
        if symbol in self.UNKNOWN_SYMBOLS:
            raise BrokerError(f"{symbol}: no such stock at the broker (SMART, USD)")
        quote = Quote(symbol, self.state.time, bid=99.99, ask=100.01, last=100.0)
        self.state = replace(self.state, quotes={**self.state.quotes, symbol: quote})
        return Instrument(symbol)

    async def submit(self, ticket: OrderTicket) -> Order:
        self.calls.append(("submit", ticket))
        now = self.state.time
        self._next += 1
        order = make_order(f"tt-{self._next}", ticket, OrderStatus.PENDING_APPROVAL, now)
        q = self.state.quotes.get(ticket.symbol)
        ref_price = q.last if q else ticket.price_for_notional(math.nan)
        item = PendingApproval(order, self.preview(ticket), now, now + timedelta(seconds=30), ref_price,
                               est_notional=ticket.quantity * ticket.price_for_notional(ref_price))
        self.state = replace(self.state, orders=(*self.state.orders, order),
                             pending_approvals=(*self.state.pending_approvals, item))
        self._publish(ApprovalRequested(now, order, item.verdict, item.expires_at))
        return order

    def _set_status(self, refs: set[str], status: OrderStatus, note: str) -> None:
        now = self.state.time
        ords = tuple(o.with_status(status, now, note) if o.order_ref in refs else o for o in self.state.orders)
        pend = tuple(p for p in self.state.pending_approvals if p.order.order_ref not in refs)
        working = tuple(o for o in ords if o.status.is_working)
        self.state = replace(self.state, orders=ords, pending_approvals=pend,
                             account=replace(self.state.account, working_orders=working))

    def working_refs(self) -> set[str]:
        """Refs of the orders working now."""
        return {o.order_ref for o in self.state.orders if o.status.is_working}

    async def cancel(self, order_ref: str) -> None:
        self.calls.append(("cancel", order_ref))
        self._set_status({order_ref}, OrderStatus.CANCELLED, "operator cancel")

    async def modify(self, order_ref: str, quantity: float | None = None, limit_price: float | None = None,
                     stop_price: float | None = None) -> RiskVerdict:
        self.calls.append(("modify", order_ref, quantity, limit_price, stop_price))
        order = next((o for o in self.state.orders if o.order_ref == order_ref and o.status.is_working), None)
        if order is None:
            return RiskVerdict(False, (CheckResult("order_working", False, message=f"no working order {order_ref}"),))
        ticket = replace(order.ticket, quantity=order.ticket.quantity if quantity is None else quantity,
                         limit_price=order.ticket.limit_price if limit_price is None else limit_price,
                         stop_price=order.ticket.stop_price if stop_price is None else stop_price)
        verdict = self.preview(ticket)
        if verdict.passed:
            self.state = replace(self.state, orders=tuple(replace(o, ticket=ticket) if o is order else o
                                                          for o in self.state.orders))
        return verdict

    async def resubmit(self, order_ref: str) -> Order:
        self.calls.append(("resubmit", order_ref))
        if not any(o.order_ref == order_ref for o in self.state.orders):
            raise ValueError(f"no order {order_ref}")
        self._set_status({order_ref}, OrderStatus.SUBMITTED, "resubmitted")
        return next(o for o in self.state.orders if o.order_ref == order_ref)

    async def cancel_all(self) -> KillReport:
        self.calls.append(("cancel_all",))
        refs = self.working_refs()
        self._set_status(refs, OrderStatus.CANCELLED, "cancel all")
        return KillReport(cancelled=tuple(sorted(refs)), remaining=(), checked=True)

    def kill(self, reason: str, by: str = "operator", *, operator: bool = True) -> None:
        self.calls.append(("kill", reason, by))
        previous = self.state.trading_state
        self.state = replace(self.state, trading_state=TradingState.HALTED, kill_engaged=True, kill_reason=reason,
                             kill_by=by)
        refs = self.working_refs() | {p.order.order_ref for p in self.state.pending_approvals}
        self._set_status(refs, OrderStatus.CANCELLED, "kill switch")
        now = self.state.time
        self._publish(TradingStateChanged(now, previous, TradingState.HALTED, by, reason))
        self._publish(KillSwitchEngaged(now, by, reason))
        self._publish(AlertRaised(now, engaged_alert(by, reason, KillTrigger.MANUAL, now)))
        self._publish(KillChecked(now, KillReport(tuple(sorted(refs)), checked=True)))

    def reduce_only(self, on: bool, reason: str, by: str = "operator") -> None:
        self.calls.append(("reduce_only", on, reason, by))
        if self.state.trading_state is not TradingState.HALTED:
            state = TradingState.REDUCING if on else TradingState.ACTIVE
            self.state = replace(self.state, trading_state=state)

    async def flatten(self, preview: bool = True, symbol: str | None = None,
                      expected: tuple[OrderTicket, ...] | None = None) -> FlattenPreview:
        self.calls.append(("flatten", preview) if symbol is None else ("flatten", preview, symbol))
        tickets = tuple(OrderTicket(p.symbol, Side.SELL if p.quantity > 0 else Side.BUY, abs(p.quantity),
                                    reduce_only=True, reason="flatten") for p in
                        sorted(self.state.account.positions.values(), key=lambda p: p.symbol)
                        if not p.is_flat and symbol in (None, p.symbol))
        prices = {s: q.mark for s, q in self.state.quotes.items()}
        self.flatten_sent = self.flatten_sent or not preview
        return FlattenPreview(tickets, prices)

    def reset_kill(self, reason: str, by: str = "operator", confirm_same_day: bool = False) -> None:
        self.calls.append(("reset_kill", reason, by, confirm_same_day))
        if self.refuse_same_day_reset and not confirm_same_day:
            raise SafetyError("the kill switch was engaged today: confirm a same-day reset")
        self.state = replace(self.state, trading_state=TradingState.ACTIVE, kill_engaged=False, kill_reason="")
        self._publish(KillSwitchReset(self.state.time, by, reason))
        self._publish(AlertRaised(self.state.time, released_alert(by, reason, self.state.time)))

    def arm(self, account_id: str, by: str = "operator") -> None:
        self.calls.append(("arm", account_id, by))

    def approve(self, order_ref: str, by: str = "operator") -> None:
        self.calls.append(("approve", order_ref, by))
        self._set_status({order_ref}, OrderStatus.SUBMITTED, "approved")
        self._publish(ApprovalResolved(self.state.time, order_ref, True, by))

    def reject(self, order_ref: str, by: str = "operator") -> None:
        self.calls.append(("reject", order_ref, by))
        self._set_status({order_ref}, OrderStatus.REJECTED, "rejected by operator")
        self._publish(ApprovalResolved(self.state.time, order_ref, False, by))

    def expire(self, order_ref: str) -> None:
        """Script: the approval of ``order_ref`` expired (expiry means deny)."""
        self._set_status({order_ref}, OrderStatus.EXPIRED, "approval expired")
        self._publish(ApprovalResolved(self.state.time, order_ref, False, "expiry"))

    def pause_strategy(self, name: str, paused: bool) -> None:
        self.calls.append(("pause_strategy", name, paused))
        strategies = tuple(replace(s, paused=paused) if s.name == name else s for s in self.state.strategies)
        self.state = replace(self.state, strategies=strategies)

    async def order_trace(self, ref: str) -> OrderTrace | None:
        self.calls.append(("order_trace", ref))
        order = next((o for o in self.state.orders if o.order_ref == ref or str(o.broker_id) == ref), None)
        return scripted_trace(order, ref, self.journal_path) if order is not None else None

    async def send_test_notification(self) -> tuple[TestNotificationResult, ...]:
        self.calls.append(("send_test_notification",))
        now = self.state.time
        results = tuple(TestNotificationResult(c.name, not c.last_error, c.last_error)
                        for c in self.state.notifications)
        after = tuple(replace(c, sent=c.sent + 1, last_success=now) if r.ok else
                      replace(c, failed=c.failed + 1, last_failure=now)
                      for c, r in zip(self.state.notifications, results, strict=True))
        self.state = replace(self.state, notifications=after)
        return results

    def snapshot(self) -> EngineSnapshot:
        return self.state

    def subscribe(self, name: str, *, maxsize: int = 10_000, lossless: bool = False) -> Subscription:
        return self.bus.subscribe(name, maxsize=maxsize, lossless=lossless)

    def called(self, name: str) -> list[tuple[object, ...]]:
        """The recorded calls of command ``name``."""
        return [c for c in self.calls if c[0] == name]
