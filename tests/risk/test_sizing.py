"""Sizing: each method, rounding to the size increment, and the cap at the limits' headroom."""

from __future__ import annotations

import pytest

from tui_trader.domain import OrderStatus, OrderType, Side, TradingState
from tui_trader.risk import RiskLimits, SizingMethod, SizingRule, pre_trade_check, round_down, size_order
from tui_trader.risk.throttle import Throttle

from .builders import T0, account, instrument, market, order, position, quote, ticket


def _size(rule: SizingRule, limits: RiskLimits | None = None, t=None, acct=None, mkt=None, **kwargs):
    return size_order(rule, t or ticket(quantity=1), acct or account(), mkt or market(), limits or RiskLimits(),
                      T0, **kwargs)  # fmt: skip


def test_size_fixed_quantity_then_that_quantity() -> None:
    assert _size(SizingRule(SizingMethod.FIXED_QUANTITY, quantity=37)).quantity == 37


def test_size_fixed_notional_then_rounded_down_to_whole_shares() -> None:
    result = _size(SizingRule(SizingMethod.FIXED_NOTIONAL, notional=5_050), t=ticket(limit_price=101.0))

    assert result.quantity == 50


def test_size_percent_of_equity_then_fraction_of_equity_at_price() -> None:
    result = _size(SizingRule(SizingMethod.EQUITY_PCT, equity_pct=5))  # 5,000 at 100

    assert result.quantity == 50


def test_size_risk_per_trade_with_stop_then_risk_over_stop_distance() -> None:
    rule = SizingRule(SizingMethod.RISK_PER_TRADE, risk_pct=0.5)  # 500 at risk

    result = _size(rule, stop_price=98.0)  # 2.00 per share

    assert result.quantity == 250


def test_size_risk_per_trade_with_money_and_atr_then_atr_multiple_distance() -> None:
    rule = SizingRule(SizingMethod.RISK_PER_TRADE, risk_money=300, atr_mult=2.0)

    result = _size(rule, atr=1.5)  # 3.00 per share

    assert result.quantity == 100
    assert "ATR" in result.reason


def test_size_risk_per_trade_without_any_stop_then_zero_with_reason() -> None:
    result = _size(SizingRule(SizingMethod.RISK_PER_TRADE, stop_pct=None))

    assert result.quantity == 0
    assert "stop" in result.reason


def test_size_when_increment_fractional_then_rounded_down_to_it() -> None:
    mkt = market(instruments=[instrument(size_increment=0.25)])

    result = _size(SizingRule(SizingMethod.FIXED_NOTIONAL, notional=1_010), mkt=mkt)

    assert result.quantity == 10.0


@pytest.mark.parametrize(("qty", "inc", "expected"), [(10.999, 1, 10), (0.3, 0.1, 0.3), (7.0, 0.5, 7.0), (-1, 1, 0)])
def test_round_down_to_increment(qty: float, inc: float, expected: float) -> None:
    assert round_down(qty, inc) == expected


@pytest.mark.parametrize(
    ("limits", "capped_by", "expected"),
    [(RiskLimits(max_order_quantity=40), "order_quantity", 40),
     (RiskLimits(max_order_notional=3_000), "order_notional", 30),
     (RiskLimits(max_position_quantity=120), "position_quantity", 20),
     (RiskLimits(max_position_notional=15_000), "position_notional", 50),
     (RiskLimits(max_gross_exposure=0.15), "gross_exposure", 50),
     (RiskLimits(max_leverage=0.12), "leverage", 20),
     (RiskLimits(min_cash_fraction=0.9), "cash_fraction", 100)],
    ids=lambda v: v if isinstance(v, str) else None,
)  # fmt: skip
def test_size_when_limit_tighter_than_rule_then_capped_at_headroom(limits, capped_by, expected) -> None:
    # Arrange: long 100 at 100 already, equity and cash 100k; the rule asks for 500
    acct = account(cash=100_000, positions=[position(quantity=100)])
    rule = SizingRule(SizingMethod.FIXED_QUANTITY, quantity=500)
    # Act
    result = _size(rule, limits, acct=acct)
    # Assert
    assert result.capped_by == capped_by
    assert result.quantity == expected
    sized = ticket(quantity=result.quantity)
    assert pre_trade_check(sized, acct, market(), limits, T0, Throttle(), TradingState.ACTIVE).passed


def test_size_when_in_flight_orders_use_the_headroom_then_smaller() -> None:
    in_flight = [order(ticket(quantity=80), status=OrderStatus.SENDING)]

    result = _size(SizingRule(SizingMethod.FIXED_QUANTITY, quantity=50), RiskLimits(max_position_quantity=100),
                   in_flight=in_flight)  # fmt: skip

    assert result.quantity == 20


def test_size_when_no_headroom_left_then_zero_with_reason() -> None:
    acct = account(positions=[position(quantity=100)])

    result = _size(SizingRule(SizingMethod.FIXED_QUANTITY, quantity=5), RiskLimits(max_position_quantity=100),
                   acct=acct)  # fmt: skip

    assert result.quantity == 0
    assert "position_quantity" in result.reason


def test_size_short_entry_against_position_limit() -> None:
    acct = account(positions=[position(quantity=-50)])
    t = ticket(side=Side.SELL, quantity=1, order_type=OrderType.MKT)

    result = _size(SizingRule(SizingMethod.FIXED_QUANTITY, quantity=500), RiskLimits(max_position_quantity=80),
                   t=t, acct=acct)  # fmt: skip

    assert result.quantity == 30


def test_size_when_no_price_then_zero() -> None:
    t = ticket("XYZ", order_type=OrderType.MKT)

    result = _size(SizingRule(), t=t, mkt=market(quote("AAPL")))

    assert result.quantity == 0
    assert "price" in result.reason
