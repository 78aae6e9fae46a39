"""Micro-benchmark: cost of a full pre-trade check with every check switched on.

Target: under 50 µs per order (issue 4). Run as a script (``python benchmarks/bench_risk.py
[--quick]``) or call :func:`run`, which returns the figures by name.
"""

from __future__ import annotations

import argparse
import statistics
import time
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
    Session,
    Side,
    TradingState,
)
from tui_trader.risk import RecentOrder, RiskLimits, Throttle, pre_trade_check

NOW = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "SPY", "QQQ", "NVDA", "AMZN", "META", "GOOG", "TSLA", "AMD")

LIMITS = RiskLimits(
    max_order_quantity=1_000, max_order_notional=100_000, max_position_notional=200_000,
    max_position_quantity=2_000, max_open_positions=20, max_gross_exposure=3.0, max_leverage=4.0,
    min_cash_fraction=0.05, price_collar_pct=5.0, price_collar_ticks=1_000, max_spread_pct=1.0,
    max_quote_age_s=5.0, max_orders_per_second=10, max_orders_per_minute=100, max_daily_trades=500,
    max_daily_trades_per_strategy=200, duplicate_window_s=2.0, allowed_symbols=SYMBOLS,
    allowed_order_types=(OrderType.MKT, OrderType.LMT, OrderType.STP, OrderType.STP_LMT), no_entry_before_close_min=10,
    no_entry_after_open_min=5, require_liquid_hours=True, max_losing_streak=5, cooldown_s=300,
)  # fmt: skip


def _scenario() -> tuple[AccountSnapshot, MarketSnapshot, list[Order], list[RecentOrder], Throttle]:
    """A realistic book: 10 symbols, 8 positions, 6 working orders, 2 in flight, 5 recent sends."""
    session = (Session(NOW - timedelta(minutes=30), NOW + timedelta(hours=6)),)
    quotes = {s: Quote(s, NOW, bid=99.99, ask=100.01, last=100.0) for s in SYMBOLS}
    instruments = {s: Instrument(s, liquid_sessions=session, trading_sessions=session) for s in SYMBOLS}
    positions = {s: Position(s, 100 * (i + 1) * (-1) ** i, 100.0, 100.0) for i, s in enumerate(SYMBOLS[:8])}
    working = tuple(_order(f"W{i}", SYMBOLS[i], Side.BUY, 10 + i, 99.0) for i in range(6))
    in_flight = [_order(f"F{i}", SYMBOLS[i + 6], Side.SELL, 5, 101.0, OrderStatus.SENDING) for i in range(2)]
    account = AccountSnapshot(NOW, "DU1", cash=800_000, equity=1_000_000, start_of_day_equity=1_000_000,
                              high_water_mark=1_000_000, positions=positions, working_orders=working,
                              trades_today=40, trades_today_by_strategy={"ema": 20})  # fmt: skip
    recent = [RecentOrder(SYMBOLS[i], Side.BUY, 7, 98.0, NOW - timedelta(seconds=1)) for i in range(5)]
    throttle = Throttle.from_rates(10, 100).record(NOW - timedelta(seconds=2))
    return account, MarketSnapshot(quotes, instruments), in_flight, recent, throttle


def _order(ref: str, symbol: str, side: Side, qty: float, price: float,
           status: OrderStatus = OrderStatus.SUBMITTED) -> Order:  # fmt: skip
    ticket = OrderTicket(symbol, side, qty, OrderType.LMT, limit_price=price, strategy="ema")
    return Order(ref, ticket, status, NOW - timedelta(minutes=1), NOW - timedelta(minutes=1))


def run(quick: bool = False) -> dict[str, float]:
    """Time ``pre_trade_check`` with every check on; returns p50/p99/mean in microseconds."""
    account, market, in_flight, recent, throttle = _scenario()
    ticket = OrderTicket("AAPL", Side.BUY, 50, OrderType.LMT, limit_price=100.0, strategy="ema")
    verdict = pre_trade_check(ticket, account, market, LIMITS, NOW, throttle, TradingState.ACTIVE, in_flight,
                              recent=recent)  # fmt: skip
    if not verdict.passed:
        raise RuntimeError(f"benchmark order must pass every check: {verdict.reason}")
    n = 2_000 if quick else 20_000
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        pre_trade_check(ticket, account, market, LIMITS, NOW, throttle, TradingState.ACTIVE, in_flight,
                        recent=recent)  # fmt: skip
        samples.append((time.perf_counter_ns() - start) / 1_000)
    samples.sort()
    return {
        "risk.check_us_p50": samples[len(samples) // 2],
        "risk.check_us_p99": samples[int(len(samples) * 0.99)],
        "risk.check_us_mean": statistics.fmean(samples),
        "risk.checks_per_order": float(len(verdict.checks)),
    }


def main() -> None:
    """Print the figures, one per line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    for name, value in run(parser.parse_args().quick).items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
