"""The scenarios the console's tests, screenshots and benchmark share, for the scripted EngineHandle.

The states here are what :class:`~tui_trader.ui.scripted_engine.ScriptedEngine` starts from. Nothing here
is random at run time: scenarios derive from a fixed seed and a frozen instant.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, ConnectionState, Mode, OrderStatus, OrderType, Side, TradingState
from tui_trader.domain.events import (
    AlertRaised,
    Event,
    KillChecked,
    KillReport,
    KillSwitchEngaged,
    TradingStateChanged,
)
from tui_trader.domain.market import Quote
from tui_trader.domain.orders import MANUAL, Bracket, Order, OrderTicket
from tui_trader.domain.portfolio import AccountSnapshot, Position
from tui_trader.domain.verdicts import CheckResult, RiskVerdict, check_line
from tui_trader.engine.snapshots import (
    ChannelStatus,
    ConnectionInfo,
    EngineSnapshot,
    HealthInfo,
    OrderTrace,
    PendingApproval,
    StrategyStatus,
    TraceStep,
)
from tui_trader.risk.checks import ORDER_NOTIONAL
from tui_trader.risk.kill_switch import KillTrigger, engaged_alert

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
                            owner=("ema_cross", MANUAL, "vwap_reversion", "")[i % 4])
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
                             strategy=("ema_cross", "vwap_reversion", MANUAL)[i % 3])
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
                           start_of_day_equity=start, high_water_mark=start + 4_200, realized_pnl_today=realized - 18.4,
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


def protective_stops(pos: dict[str, Position], now: datetime) -> tuple[Order, ...]:
    """The positions' stops as the orders they are at the broker: for each position with one, a reduce-only stop on
    its closing side for all of it, working since an hour before ``now``."""
    out = []
    for i, p in enumerate(q for q in pos.values() if q.quantity and q.stop_price):
        ticket = OrderTicket(p.symbol, Side.SELL if p.quantity > 0 else Side.BUY, abs(p.quantity), OrderType.STP,
                             stop_price=p.stop_price, reduce_only=True, strategy=p.owner or MANUAL)
        out.append(make_order(f"tt-{90 + i:03d}", ticket, OrderStatus.SUBMITTED, now - timedelta(hours=1)))
    return tuple(out)


def protected_state(now: datetime = FROZEN) -> EngineSnapshot:
    """:func:`normal_state` with the positions' stops working at the broker (:func:`protective_stops`): the
    positions that show a stop are protected by one, as the quit dialog reads them (only a working stop protects)."""
    snap = normal_state(now)
    stops = protective_stops(snap.account.positions, now)
    return replace(snap, orders=(*stops, *snap.orders),
                   account=replace(snap.account, working_orders=(*stops, *snap.account.working_orders)))


def sample_verdict(notional: float = 21_240.0) -> RiskVerdict:
    """Every pre-trade check passing, with value / limit / headroom."""
    checks = (
        CheckResult("order_quantity", True, 100, 1000, 900, unit="qty"),
        CheckResult(ORDER_NOTIONAL, True, notional, 50_000, 50_000 - notional, unit="$"),
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
    """After Ctrl+K: HALTED, kill latched, working orders cancelled (``halted_events`` tells of it), and with them
    the positions' stops and targets: none shows one (:func:`~tui_trader.domain.portfolio.protection`)."""
    snap = normal_state(now)
    ords = tuple(o.with_status(OrderStatus.CANCELLED, now, "kill switch") if o.status.is_working else o
                 for o in snap.orders)
    bare = {s: replace(p, stop_price=None, take_profit_price=None) for s, p in snap.account.positions.items()}
    return replace(snap, trading_state=TradingState.HALTED, kill_engaged=True, kill_reason=KILL_REASON,
                   kill_by="operator",
                   orders=ords, account=replace(snap.account, positions=bare, working_orders=()))


def halted_events(now: datetime = FROZEN) -> list[Event]:
    """The kill that led to ``halted_state``: HALTED, and the working orders it cancelled."""
    cancelled = tuple(sorted(o.order_ref for o in normal_state(now).orders if o.status.is_working))
    return [TradingStateChanged(now, TradingState.ACTIVE, TradingState.HALTED, "operator", KILL_REASON),
            KillSwitchEngaged(now, "operator", KILL_REASON),
            AlertRaised(now, engaged_alert("operator", KILL_REASON, KillTrigger.MANUAL, now)),
            KillChecked(now, KillReport(cancelled, checked=True))]


def disconnected_state(now: datetime = FROZEN) -> EngineSnapshot:
    """The gateway link is down; quotes and positions are 40 s old; the engine tries again in 7 s."""
    snap = normal_state(now)
    old = {s: replace(q, time=now - timedelta(seconds=40)) for s, q in snap.quotes.items()}
    conn = replace(snap.connection, state=ConnectionState.DISCONNECTED, connected_since=None, reconnects=3,
                   round_trip_ms=None, last_error="1100: Connectivity between IB and TWS has been lost",
                   last_error_at=now - timedelta(seconds=40), retry_at=now + timedelta(seconds=6.5))
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
