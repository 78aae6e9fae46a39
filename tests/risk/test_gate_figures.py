"""Every figure of a full verdict, pinned: name, pass, value, limit, headroom, message and unit of all 25 checks.

The gate is tuned for speed (it runs on the order's path before the wire); these verdicts were taken
from the gate before that tuning, so a faster gate that moves any figure, reorders the checks or
rewords a message fails here. Exact equality on purpose: a headroom off by one ulp is a change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tui_trader.domain import OrderStatus, OrderType, RiskVerdict, Side, TradingState
from tui_trader.risk import RecentOrder, Throttle, pre_trade_check

from .builders import ALL_ON, T0, account, market, order, position, quote, ticket


def _book():
    """Long 300 AAPL, short 200 MSFT marked at 50; a working buy in each (10 of MSFT's filled), a sell
    of SPY in flight; $150k cash of $200k equity, 7 trades today (3 by "ema")."""
    acct = account(equity=200_000.0, cash=150_000.0, trades_today=7, trades_today_by_strategy={"ema": 3},
                   positions=[position("AAPL", 300), position("MSFT", -200, market_price=50.0)],
                   working=[order(ticket("AAPL", quantity=40, limit_price=99.5, strategy="ema"), ref="W1"),
                            order(ticket("MSFT", Side.BUY, 50, limit_price=49.0), ref="W2", filled=10)])  # fmt: skip
    in_flight = [order(ticket("SPY", Side.SELL, 20, limit_price=101.0, strategy="ema"), status=OrderStatus.SENDING,
                       ref="F1")]  # fmt: skip
    return acct, in_flight


def _figures(verdict: RiskVerdict) -> list[tuple]:
    return [(c.name, c.passed, c.value, c.limit, c.headroom, c.message, c.unit) for c in verdict.checks]


def _gate(t, state: TradingState = TradingState.ACTIVE, **kwargs) -> RiskVerdict:
    acct, in_flight = _book()
    mkt = market(quote(), quote("MSFT", 49.98, 50.02, 50.0), quote("SPY", 100.5, 100.6, 100.55))
    throttle = Throttle.from_rates(10, 100).record(T0 - timedelta(seconds=0.5)).record(T0 - timedelta(seconds=0.2))
    return pre_trade_check(t, acct, mkt, ALL_ON, T0, throttle, state, in_flight, **kwargs)


_COMMON = [
    ("ticket_valid", True, None, None, None, "", ""),
    ("symbol_allowed", True, None, None, None, "", ""),
    ("order_type_allowed", True, None, None, None, "", ""),
    ("quote", True, None, None, None, "", ""),
    ("quote_age", True, 0.0, 5.0, 5.0, "", "s"),
    ("price_collar_pct", True, 0.01999999999999602, 5.0, 4.980000000000004, "", "%"),
    ("price_collar_ticks", True, 2.0, 1000, 998.0, "", "ticks"),
]
_THROTTLES = [
    ("throttle_per_second", True, 0, 9, 9, "", "msgs"),
    ("throttle_per_minute", True, 1.1666666666666714, 99, 97.83333333333333, "", "msgs"),
]
_EXEMPT = "reduces a position: exempt"


def test_gate_figures_when_an_entry_repeats_a_recent_order_then_every_figure_as_before() -> None:
    recent = [RecentOrder("AAPL", Side.BUY, 100, 100.02, T0 - timedelta(seconds=1))]

    verdict = _gate(ticket("AAPL", quantity=100, limit_price=100.02, strategy="ema"), recent=recent)

    assert _figures(verdict) == [
        ("trading_state", True, None, None, None, "ACTIVE", ""),
        *_COMMON,
        ("order_quantity", True, 100, 1000, 900, "", "qty"),
        ("order_notional", True, 10002.0, 100000, 89998.0, "", "$"),
        ("position_quantity", True, 440.0, 2000, 1560.0, "", "qty"),
        ("position_notional", True, 44000.0, 200000, 156000.0, "", "$"),
        ("open_positions", True, 3.0, 10, 7.0, "", "positions"),
        ("gross_exposure", True, 0.280055, 2.0, 1.719945, "", "x equity"),
        ("leverage", True, 0.280055, 2.0, 1.719945, "", "x"),
        ("cash_fraction", True, 0.67029, 0.1, 0.5702900000000001, "", "of equity"),
        ("trading_hours", True, None, None, None, "", ""),
        ("close_window", True, 360.0, 10, 350.0, "", "min"),
        ("open_window", True, 30.0, 5, 25.0, "", "min"),
        ("cooldown", True, 0.0, 300, 300, "", "s"),
        *_THROTTLES,
        ("daily_trades", True, 10, 100, 90, "", "trades"),
        ("daily_trades_strategy", True, 6, 50, 44, "", "trades"),
        ("duplicate", False, 1, 0, -1, "same order sent within 2s", "orders"),  # unit was "" (fixed)
    ]
    assert not verdict.passed


def test_gate_figures_when_an_exit_while_reducing_then_every_figure_as_before() -> None:
    verdict = _gate(ticket("AAPL", Side.SELL, 200, limit_price=99.98), TradingState.REDUCING)

    assert _figures(verdict) == [
        ("trading_state", True, None, None, None, "REDUCING", ""),
        *_COMMON,
        ("order_quantity", True, 200, 1000, 800, "", "qty"),
        ("order_notional", True, 19998.0, 100000, 80002.0, "", "$"),
        ("position_quantity", True, 340.0, 2000, 1660.0, "", "qty"),
        ("position_notional", True, 34000.0, 200000, 166000.0, "", "$"),
        ("open_positions", True, 3.0, 10, 7.0, "", "positions"),
        ("gross_exposure", True, 0.230055, 2.0, 1.7699449999999999, "", "x equity"),
        ("leverage", True, 0.230055, 2.0, 1.7699449999999999, "", "x"),
        *[(name, True, None, None, None, _EXEMPT, "")
          for name in ("cash_fraction", "trading_hours", "close_window", "open_window", "cooldown")],
        *_THROTTLES,
        ("daily_trades", True, None, None, None, _EXEMPT, ""),
        ("daily_trades_strategy", True, None, None, None, _EXEMPT, ""),
        ("duplicate", True, 0, 0, 0, "", "orders"),
    ]  # fmt: skip
    assert verdict.passed


def test_gate_figures_when_a_market_buy_breaks_eleven_limits_then_every_figure_and_message_as_before() -> None:
    acct, in_flight = _book()
    acct = replace(acct, losing_streak=5, last_loss_at=T0 - timedelta(seconds=60))
    mkt = market(quote(bid=99.0, ask=101.0, time=T0 - timedelta(seconds=10)), quote("MSFT", 49.98, 50.02, 50.0))
    limits = replace(ALL_ON, max_daily_trades=9, max_daily_trades_per_strategy=5)
    throttle = Throttle.from_rates(2, 100).record(T0 - timedelta(seconds=0.1), 2)
    t = ticket("AAPL", quantity=3000, order_type=OrderType.MKT, strategy="ema")

    verdict = pre_trade_check(t, acct, mkt, limits, T0, throttle, TradingState.ACTIVE, in_flight)

    assert _figures(verdict) == [
        ("trading_state", True, None, None, None, "ACTIVE", ""),
        *_COMMON[:4],
        ("quote_age", False, 10.0, 5.0, -5.0, "10s over the limit of 5s", "s"),
        ("spread", False, 2.0, 1.0, -1.0, "2% over the limit of 1%", "%"),
        ("price_collar_pct", True, 0.0, 5.0, 5.0, "", "%"),
        ("price_collar_ticks", True, 0.0, 1000, 1000.0, "", "ticks"),
        ("order_quantity", False, 3000, 1000, -2000, "3,000 qty over the limit of 1,000 qty", "qty"),
        ("order_notional", False, 303000.0, 100000, -203000.0, "$303,000.00 over the limit of $100,000.00", "$"),
        ("position_quantity", False, 3340.0, 2000, -1340.0, "3,340 qty over the limit of 2,000 qty", "qty"),
        ("position_notional", False, 334000.0, 200000, -134000.0, "$334,000.00 over the limit of $200,000.00", "$"),
        ("open_positions", True, 3.0, 10, 7.0, "", "positions"),
        ("gross_exposure", True, 1.7301, 2.0, 0.26990000000000003, "", "x equity"),
        ("leverage", True, 1.7301, 2.0, 0.26990000000000003, "", "x"),
        ("cash_fraction", False, -0.7947, 0.1, -0.8946999999999999,
         "cash would fall to -79.5% of equity, minimum 10.0%", "of equity"),
        ("trading_hours", True, None, None, None, "", ""),
        ("close_window", True, 360.0, 10, 350.0, "", "min"),
        ("open_window", True, 30.0, 5, 25.0, "", "min"),
        ("cooldown", False, 240.0, 300, -240.0, "5 losses in a row: cooling down 240s more", "s"),
        ("throttle_per_second", False, 1.8, 1, -0.8, "message rate exceeded; retry in 0.40s", "msgs"),
        ("throttle_per_minute", True, 1.8333333333333286, 99, 97.16666666666667, "", "msgs"),
        ("daily_trades", False, 10, 9, -1, "10 trades over the limit of 9 trades (7 executed today, 2 working orders "
         "that may execute, and this one)", "trades"),
        ("daily_trades_strategy", False, 6, 5, -1, "6 trades over the limit of 5 trades (3 executed today, 2 "
         "working orders that may execute, and this one)", "trades"),
        ("duplicate", True, 0, 0, 0, "", "orders"),
    ]  # fmt: skip

