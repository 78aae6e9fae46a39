"""A deterministic, scripted EngineHandle and the scenarios the tests, screenshots and benchmark share.

``ScriptedEngine`` keeps its whole state in one frozen ``EngineSnapshot`` and answers every
``EngineHandle`` command by replacing it, recording each call. Nothing here is random at run
time: scenarios derive from a fixed seed and a frozen instant.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, ConnectionState, Mode, OrderStatus, OrderType, Side, TradingState
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
from tui_trader.domain.orders import Bracket, Order, OrderTicket, WhatIf
from tui_trader.domain.portfolio import AccountSnapshot, Position
from tui_trader.domain.verdicts import CheckResult, RiskVerdict, check_line
from tui_trader.engine.bus import EventBus, Subscription
from tui_trader.engine.snapshots import (
    ChannelStatus,
    ConnectionInfo,
    EngineSnapshot,
    FlattenPreview,
    HealthInfo,
    OrderTrace,
    PendingApproval,
    StrategyStatus,
    TestNotificationResult,
    TraceStep,
)
from tui_trader.errors import BrokerError, SafetyError
from tui_trader.risk.kill_switch import KillTrigger, engaged_alert, released_alert

FROZEN = datetime(2025, 3, 14, 14, 30, 0, tzinfo=UTC)
"""The instant every scenario is frozen at (10:30 in New York)."""

SYMBOLS = ("AAPL", "AMD", "AMZN", "GOOGL", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA")
BASE_PRICE = {"AAPL": 212.4, "AMD": 118.2, "AMZN": 196.8, "GOOGL": 165.3, "META": 590.1, "MSFT": 388.7,
              "NVDA": 121.6, "QQQ": 480.2, "SPY": 562.9, "TSLA": 248.5}


def quotes(now: datetime, symbols: tuple[str, ...] = SYMBOLS, seed: int = 7) -> dict[str, Quote]:
    """Two-sided quotes a few hundred milliseconds old."""
    rng = random.Random(seed)
    out = {}
    for i, sym in enumerate(symbols):
        base = BASE_PRICE.get(sym, 50.0 + 10 * i)
        last = round(base * (1 + rng.uniform(-0.02, 0.02)), 2)
        out[sym] = Quote(sym, now - timedelta(milliseconds=100 + 90 * i), bid=last - 0.01, ask=last + 0.02,
                         last=last, close=base, volume=1e6 + i * 1e5, last_size=100)
    return out


def price_history(symbol: str, points: int = 48, seed: int = 7) -> list[float]:
    """A seeded random walk ending near the symbol's base price (sparklines in screenshots)."""
    rng = random.Random(f"{seed}-{symbol}")
    price, out = BASE_PRICE.get(symbol, 100.0), []
    for _ in range(points):
        price *= 1 + rng.gauss(0, 0.002)
        out.append(round(price, 2))
    return out


def positions(q: dict[str, Quote], count: int) -> dict[str, Position]:
    """``count`` positions, alternately long and short, with stops on most, owned by a strategy, a ticket or none."""
    out = {}
    for i, sym in enumerate(list(q)[:count]):
        mark = q[sym].last
        qty = (100 + 50 * i) * (1 if i % 3 else -1)
        cost = round(mark * (1 - 0.01 * ((i % 4) - 1.5)), 2)
        stop = round(cost * (0.97 if qty > 0 else 1.03), 2) if i != 2 else None
        out[sym] = Position(sym, qty, cost, mark, realized_pnl=round(35.5 * (i - 1), 2),
                            stop_price=stop, take_profit_price=round(cost * (1.06 if qty > 0 else 0.94), 2),
                            owner=("ema_cross", "manual", "vwap_reversion", "")[i % 4])
    return out


def make_order(ref: str, ticket: OrderTicket, status: OrderStatus, when: datetime, filled: float = 0.0) -> Order:
    """An order in ``status`` created at ``when``."""
    price = ticket.limit_price or ticket.stop_price or 0.0
    return Order(ref, ticket, status, when, when, broker_id=int(ref[-3:]) if ref[-3:].isdigit() else None,
                 filled_quantity=filled, avg_fill_price=price if filled else 0.0)


def orders(q: dict[str, Quote], now: datetime, count: int) -> tuple[Order, ...]:
    """A mix of working, filled and cancelled orders."""
    statuses = (OrderStatus.SUBMITTED, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELLED,
                OrderStatus.SUBMITTED, OrderStatus.REJECTED)
    syms = list(q)
    out = []
    for i in range(count):
        sym = syms[i % len(syms)]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        limit = round(q[sym].last * (0.995 if side is Side.BUY else 1.005), 2)
        ticket = OrderTicket(sym, side, 50 + 10 * (i % 5), OrderType.LMT, limit_price=limit,
                             strategy=("ema_cross", "vwap_reversion", "manual")[i % 3])
        status = statuses[i % len(statuses)]
        filled = ticket.quantity if status is OrderStatus.FILLED else 20.0 if status.is_working and i % 3 == 2 else 0
        out.append(make_order(f"tt-{100 + i:03d}", ticket, status, now - timedelta(seconds=40 * (count - i)), filled))
    return tuple(out)


def account(now: datetime, pos: dict[str, Position], working: tuple[Order, ...]) -> AccountSnapshot:
    """An account whose equity reflects the positions' open P&L."""
    upnl = sum(p.unrealized_pnl for p in pos.values())
    start = 1_000_000.0
    realized = sum(p.realized_pnl for p in pos.values())
    return AccountSnapshot(now, "DUSIM0042", cash=start - 250_000, equity=start + upnl + realized,
                           start_of_day_equity=start, high_water_mark=start + 4_200, realized_pnl_today=realized,
                           unrealized_pnl=upnl, commissions_today=18.4, positions=pos, working_orders=working,
                           trades_today=23)


def healthy_connection(now: datetime) -> ConnectionInfo:
    """A connected link to the embedded simulator."""
    return ConnectionInfo("127.0.0.1", 4012, 17, ConnectionState.CONNECTED, now - timedelta(hours=1, minutes=3),
                          reconnects=1, farms={"usfarm": "OK (2104)", "ushmds": "OK (2106)",
                                               "secdefnj": "inactive (2158)"},
                          round_trip_ms=0.8, pacing_budget=0.92)


def normal_state(now: datetime = FROZEN, *, n_symbols: int = 8, n_positions: int = 5,
                 n_orders: int = 9) -> EngineSnapshot:
    """A calm, connected SIM session with positions, orders and strategies."""
    syms = tuple(SYMBOLS[i % len(SYMBOLS)] if i < len(SYMBOLS) else f"S{i:03d}" for i in range(n_symbols))
    q = quotes(now, syms)
    pos = positions(q, n_positions)
    ords = orders(q, now, n_orders)
    working = tuple(o for o in ords if o.status.is_working)
    return EngineSnapshot(
        time=now, heartbeat_at=now - timedelta(milliseconds=120), mode=Mode.SIM, dry_run=False,
        account_id="DUSIM0042", trading_state=TradingState.ACTIVE, kill_engaged=False, kill_reason="",
        connection=healthy_connection(now), account=account(now, pos, working), orders=ords, quotes=q,
        strategies=(StrategyStatus("ema_cross", ("SPY", "QQQ"), last_signal_at=now - timedelta(minutes=4)),
                    StrategyStatus("vwap_reversion", ("AAPL", "MSFT"))),
        health=HealthInfo(now - timedelta(milliseconds=400), cpu_pct=23.5, process_cpu_pct=11.2, mem_pct=61.0,
                          process_rss_mb=182.4, disk_pct=87.2, loop_lag_ms=2.4, journal_queue=3),
        notifications=channel_statuses(now),
    )


def sample_verdict(notional: float = 21_240.0) -> RiskVerdict:
    """Every pre-trade check passing, with value / limit / headroom."""
    checks = (
        CheckResult("order_quantity", True, 100, 1000, 900, unit="qty"),
        CheckResult("order_notional", True, notional, 50_000, 50_000 - notional, unit="$"),
        CheckResult("position_notional", True, 42_480, 100_000, 57_520, unit="$"),
        CheckResult("gross_exposure", True, 0.041, 1.0, 0.959, unit="x equity"),
        CheckResult("price_collar_pct", True, 0.12, 5.0, 4.88, unit="%"),
        CheckResult("spread", True, 0.01, 1.0, 0.99, unit="%"),
        CheckResult("daily_trades", True, 23, 100, 77, unit="trades"),
        CheckResult("orders_per_minute", True, 4, 60, 56, unit="msgs"),
        CheckResult("liquid_hours", True, message="inside regular hours"),
    )
    return RiskVerdict(True, checks)


def pending(now: datetime, ref: str = "tt-200", symbol: str = "AAPL", seconds_left: float = 24) -> PendingApproval:
    """A bracketed buy waiting for approval."""
    ticket = OrderTicket(symbol, Side.BUY, 100, OrderType.LMT, limit_price=212.40,
                         bracket=Bracket(stop_price=208.15, take_profit_price=220.90), strategy="ema_cross",
                         reason="EMA(9) crossed above EMA(21) on 1-min bars", signal_price=212.10,
                         created_at=now - timedelta(seconds=6))
    order = make_order(ref, ticket, OrderStatus.PENDING_APPROVAL, now - timedelta(seconds=6))
    return PendingApproval(order, sample_verdict(), now - timedelta(seconds=6), now + timedelta(seconds=seconds_left),
                           reference_price=212.36, est_notional=21_240.0, est_commission=1.0, margin_impact=5_310.0)


def channel_statuses(now: datetime) -> tuple[ChannelStatus, ...]:
    """Telegram and email delivering, the webhook failing with its endpoint down."""
    return (
        ChannelStatus("telegram", 0, 14, 0, 0, 0, now - timedelta(minutes=3, seconds=12), None, ""),
        ChannelStatus("email", 1, 3, 0, 0, 1, now - timedelta(minutes=41), now - timedelta(minutes=42), ""),
        ChannelStatus("webhook", 4, 0, 2, 0, 6, None, now - timedelta(seconds=35),
                      "POST http://127.0.0.1:9/hook: connection refused"),
    )


def scripted_trace(order: Order, query: str, journal: str = "/var/lib/tui-trader/journal.sqlite") -> OrderTrace:
    """A deterministic trace of ``order`` (signal to position), shaped like the journal's."""
    t, ref, at = order.ticket, order.order_ref, order.created_at
    price = t.limit_price or t.stop_price or BASE_PRICE.get(t.symbol, 100.0)
    checks = sample_verdict(round(t.quantity * price, 2)).checks
    steps = [
        TraceStep(at - timedelta(seconds=1), "signal", f"{t.strategy}: {t.side.value} {t.symbol} at {price:g}", ref,
                  {"reason": t.reason} if t.reason else {}),
        TraceStep(at, "sizing", f"{t.side.value} {t.quantity:g} {t.symbol} {t.order_type.value} limit {price:g} "
                  f"{t.tif.value} by {t.strategy}", ref, {"quantity": t.quantity}),
        *(TraceStep(at, "risk check", check_line(c), ref, {"check": c.name, "passed": c.passed, "value": c.value,
                                                           "limit": c.limit, "headroom": c.headroom})
          for c in checks),
        TraceStep(at, "approval requested", "expires after 30s", ref),
        TraceStep(at + timedelta(seconds=6.2), "approval", "approved by operator after 6.2s", ref,
                  {"approved": True, "by": "operator", "waited_s": 6.2}),
        TraceStep(at + timedelta(seconds=6.3), "status", "APPROVED -> SENDING (journaled before send)", ref),
        TraceStep(at + timedelta(seconds=6.4), "status", "SENDING -> SUBMITTED", ref,
                  {"broker_id": order.broker_id}),
    ]
    if order.filled_quantity:
        when, exec_id = at + timedelta(seconds=7), f"0001f4e8.{ref}.01"
        steps += [
            TraceStep(when, "fill", f"{t.side.value} {order.filled_quantity:g} @ {price:g} ({exec_id})", ref,
                      {"exec_id": exec_id, "quantity": order.filled_quantity, "price": price}),
            TraceStep(when, "status", f"SUBMITTED -> {order.status.value}", ref),
            TraceStep(when + timedelta(milliseconds=50), "commission", f"1 on {exec_id}", ref, {"commission": 1.0}),
            TraceStep(when + timedelta(milliseconds=50), "position",
                      f"{t.symbol} position {order.filled_quantity:g} after this order", ref,
                      {"symbol": t.symbol, "position": order.filled_quantity}),
        ]
    return OrderTrace(query, ref, t.symbol, tuple(steps), journal)


KILL_REASON = "operator pressed Ctrl+K"


def halted_state(now: datetime = FROZEN) -> EngineSnapshot:
    """After Ctrl+K: HALTED, kill latched, working orders cancelled (``halted_events`` tells of it)."""
    snap = normal_state(now)
    ords = tuple(o.with_status(OrderStatus.CANCELLED, now, "kill switch") if o.status.is_working else o
                 for o in snap.orders)
    return replace(snap, trading_state=TradingState.HALTED, kill_engaged=True, kill_reason=KILL_REASON,
                   kill_by="operator",
                   orders=ords, account=replace(snap.account, working_orders=()))


def halted_events(now: datetime = FROZEN) -> list[Event]:
    """The kill that led to ``halted_state``: HALTED, and the working orders it cancelled."""
    cancelled = tuple(sorted(o.order_ref for o in normal_state(now).orders if o.status.is_working))
    return [TradingStateChanged(now, TradingState.ACTIVE, TradingState.HALTED, "operator", KILL_REASON),
            KillSwitchEngaged(now, "operator", KILL_REASON),
            AlertRaised(now, engaged_alert("operator", KILL_REASON, KillTrigger.MANUAL, now)),
            KillChecked(now, KillReport(cancelled, checked=True))]


def disconnected_state(now: datetime = FROZEN) -> EngineSnapshot:
    """The gateway link is down; quotes and positions are 40 s old."""
    snap = normal_state(now)
    old = {s: replace(q, time=now - timedelta(seconds=40)) for s, q in snap.quotes.items()}
    conn = replace(snap.connection, state=ConnectionState.DISCONNECTED, connected_since=None, reconnects=3,
                   round_trip_ms=None, last_error="1100: Connectivity between IB and TWS has been lost",
                   last_error_at=now - timedelta(seconds=40))
    return replace(snap, connection=conn, quotes=old)


def stalled_state(now: datetime = FROZEN) -> EngineSnapshot:
    """The engine heartbeat stopped 12 s ago (the loop is blocked or the engine died)."""
    snap = normal_state(now - timedelta(seconds=12))
    return snap


def storm_alerts(now: datetime, count: int = 300) -> list[Event]:
    """An alert storm: many alerts of every level within a few seconds."""
    levels = (AlertLevel.INFO, AlertLevel.WARNING, AlertLevel.ERROR, AlertLevel.CRITICAL)
    texts = ("quote crossed on {s}", "spread {s} above 1%", "order rejected by broker (201) on {s}",
             "market data farm broken (2103)")
    out: list[Event] = []
    for i in range(count):
        t = now - timedelta(milliseconds=10 * (count - i))
        level = levels[(i * 7) % 4] if i % 5 else AlertLevel.WARNING
        text = texts[i % 4].format(s=SYMBOLS[i % len(SYMBOLS)])
        out.append(AlertRaised(t, Alert(level, ("risk", "broker", "marketdata", "engine")[i % 4], text, t)))
    return out


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
        check = CheckResult("order_notional", ok, notional, 50_000, 50_000 - notional,
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


def prime_histories(app: object, state: EngineSnapshot) -> None:
    """Preload the sparklines of a running app so screenshots show a session's history."""
    from tui_trader.ui.app import TraderApp
    from tui_trader.ui.widgets.pnl import PnLPane
    from tui_trader.ui.widgets.watchlist import WatchlistPane

    assert isinstance(app, TraderApp)
    watch = app.main.query_one(WatchlistPane)
    for symbol in state.quotes:
        watch.seed_history(symbol, price_history(symbol))
    pnl = app.main.query_one(PnLPane)
    walk = price_history("equity", 120, seed=3)
    start = state.account.start_of_day_equity or state.account.equity
    pnl.seed_history([start + (p - walk[0]) * 40 for p in walk], [(p - walk[0]) * 40 for p in walk])
