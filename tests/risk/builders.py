"""Builders for risk tests: tickets, orders, quotes and snapshots with sane defaults."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tui_trader.domain import (
    AccountSnapshot,
    Instrument,
    MarketSnapshot,
    Order,
    OrderStatus,
    OrderTicket,
    OrderType,
    Position,
    Quote,
    RiskVerdict,
    Session,
    Side,
    TradingState,
)
from tui_trader.risk import RecentOrder, RiskLimits, Throttle, pre_trade_check

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
"""Monday 10:00 in New York: inside the regular session built by :func:`instrument`."""

OPEN = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
CLOSE = datetime(2024, 3, 4, 21, 0, tzinfo=UTC)


ALL_ON = RiskLimits(
    max_order_quantity=1_000, max_order_notional=100_000, max_position_notional=200_000,
    max_position_quantity=2_000, max_open_positions=10, max_gross_exposure=2.0, max_leverage=2.0,
    min_cash_fraction=0.1, price_collar_pct=5.0, price_collar_ticks=1_000, max_spread_pct=1.0,
    max_quote_age_s=5.0, max_orders_per_second=10, max_orders_per_minute=100, max_daily_trades=100,
    max_daily_trades_per_strategy=50, duplicate_window_s=2.0, allowed_symbols=("AAPL", "MSFT", "SPY"),
    allowed_order_types=("MKT", "LMT", "STP", "STP LMT"), no_entry_before_close_min=10,
    no_entry_after_open_min=5, require_liquid_hours=True, max_losing_streak=5, cooldown_s=300,
)  # fmt: skip
"""Every pre-trade check switched on, with limits an ordinary order fits inside."""


def secs(n: float) -> timedelta:
    """``n`` seconds."""
    return timedelta(seconds=n)


def quote(symbol: str = "AAPL", bid: float = 99.99, ask: float = 100.01, last: float = 100.0,
          time: datetime = T0) -> Quote:  # fmt: skip
    """A two-sided quote around 100."""
    return Quote(symbol, time, bid=bid, ask=ask, last=last)


def instrument(symbol: str = "AAPL", min_tick: float = 0.01, size_increment: float = 1.0,
               liquid: Sequence[Session] | None = None) -> Instrument:  # fmt: skip
    """An instrument with one regular session 09:30-16:00 New York on T0's day."""
    sessions = (Session(OPEN, CLOSE),) if liquid is None else tuple(liquid)
    extended = (Session(OPEN - timedelta(hours=5, minutes=30), CLOSE + timedelta(hours=4)),)
    return Instrument(symbol, min_tick=min_tick, size_increment=size_increment,
                      liquid_sessions=sessions, trading_sessions=extended)  # fmt: skip


def market(*quotes: Quote, instruments: Sequence[Instrument] = ()) -> MarketSnapshot:
    """Quotes by symbol (default: one AAPL quote) and instruments (default: one per quote)."""
    qs = quotes or (quote(),)
    inst = {i.symbol: i for i in instruments} or {q.symbol: instrument(q.symbol) for q in qs}
    return MarketSnapshot(quotes={q.symbol: q for q in qs}, instruments=inst)


def position(symbol: str = "AAPL", quantity: float = 100, avg_cost: float = 100.0,
             market_price: float = 100.0, opened_at: datetime | None = None) -> Position:  # fmt: skip
    """A position marked at ``market_price``."""
    return Position(symbol, quantity, avg_cost, market_price=market_price, opened_at=opened_at)


def account(equity: float = 100_000.0, cash: float | None = None, positions: Sequence[Position] = (),
            working: Sequence[Order] = (), **kwargs: object) -> AccountSnapshot:  # fmt: skip
    """An account snapshot at T0; cash defaults to equity."""
    return AccountSnapshot(
        time=T0, account_id="DU123", cash=equity if cash is None else cash, equity=equity,
        start_of_day_equity=kwargs.pop("start_of_day_equity", equity),  # type: ignore[arg-type]
        high_water_mark=kwargs.pop("high_water_mark", equity),  # type: ignore[arg-type]
        positions={p.symbol: p for p in positions}, working_orders=tuple(working), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def ticket(symbol: str = "AAPL", side: Side = Side.BUY, quantity: float = 10,
           order_type: OrderType = OrderType.LMT, limit_price: float | None = 100.0,
           stop_price: float | None = None, **kwargs: object) -> OrderTicket:  # fmt: skip
    """A limit order ticket at 100 by default."""
    if order_type is OrderType.MKT and limit_price == 100.0:
        limit_price = None
    return OrderTicket(symbol, side, quantity, order_type, limit_price, stop_price, **kwargs)  # type: ignore[arg-type]


_refs = iter(range(1, 10**9))
_broker_ids = iter(range(1, 10**9))


def order(t: OrderTicket | None = None, status: OrderStatus = OrderStatus.SUBMITTED,
          created_at: datetime = T0 - timedelta(minutes=5), filled: float = 0.0, ref: str = "",
          placed: bool = True, parent_ref: str | None = None) -> Order:  # fmt: skip
    """A working order for ``t`` (default: the default ticket), placed at the broker (a broker id) unless not
    ``placed``; a bracket child of ``parent_ref``."""
    t = t or ticket()
    broker_id = next(_broker_ids) if placed else None
    return Order(ref or f"R{next(_refs)}", t, status, created_at, created_at, broker_id,
                 filled_quantity=filled, parent_ref=parent_ref)


def check(t: OrderTicket, limits: RiskLimits, *, acct: AccountSnapshot | None = None,
          mkt: MarketSnapshot | None = None, now: datetime = T0, throttle: Throttle | None = None,
          state: TradingState = TradingState.ACTIVE, in_flight: Sequence[Order] = (),
          recent: Sequence[RecentOrder] = ()) -> RiskVerdict:  # fmt: skip
    """Run the gate with defaults for everything not under test."""
    return pre_trade_check(
        t, acct or account(), mkt or market(), limits, now, throttle or Throttle(), state, in_flight,
        recent=recent,
    )  # fmt: skip
