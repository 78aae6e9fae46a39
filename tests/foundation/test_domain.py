"""Domain values: their derived figures and their invariants."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tui_trader.domain import (
    AccountSnapshot,
    Instrument,
    Order,
    OrderStatus,
    OrderTicket,
    OrderType,
    Position,
    Quote,
    Side,
)

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_quote_when_two_sides_then_mid_spread_and_mark() -> None:
    q = Quote("SPY", T0, bid=99.98, ask=100.02, last=100.5)
    assert q.mid == pytest.approx(100.0)
    assert q.spread == pytest.approx(0.04)
    assert q.mark == pytest.approx(100.0)
    assert not q.is_crossed


def test_quote_when_one_side_missing_then_mark_falls_back_to_last() -> None:
    q = Quote("SPY", T0, bid=99.0, last=100.5)
    assert math.isnan(q.mid)
    assert q.mark == 100.5


def test_quote_when_bid_above_ask_then_crossed() -> None:
    assert Quote("SPY", T0, bid=100.1, ask=100.0).is_crossed


def test_order_when_status_changes_then_history_grows_and_original_untouched() -> None:
    ticket = OrderTicket("SPY", Side.SELL, 10, OrderType.LMT, limit_price=101.0)
    order = Order("R1", ticket, OrderStatus.APPROVED, T0, T0)
    moved = order.with_status(OrderStatus.SENDING, T0, "journaled")
    assert order.history == ()
    assert [s.status for s in moved.history] == [OrderStatus.SENDING]
    assert moved.remaining == 10
    assert ticket.signed_quantity == -10


def test_status_sets_partition_lifecycle() -> None:
    assert OrderStatus.UNKNOWN.is_working
    assert not OrderStatus.UNKNOWN.is_final
    assert OrderStatus.FILLED.is_final
    assert not OrderStatus.FILLED.is_working
    assert not OrderStatus.PENDING_APPROVAL.is_working


def test_position_when_short_and_price_falls_then_unrealized_gain() -> None:
    pos = Position("SPY", -10, avg_cost=100.0, market_price=95.0)
    assert pos.unrealized_pnl == pytest.approx(50.0)
    assert pos.market_value == pytest.approx(-950.0)


def test_account_exposure_and_drawdown() -> None:
    acct = AccountSnapshot(
        T0, equity=98_000, high_water_mark=100_000,
        positions={"A": Position("A", 10, 100, 110), "B": Position("B", -5, 50, 40)},
    )
    assert acct.gross_exposure == pytest.approx(1_300)
    assert acct.net_exposure == pytest.approx(900)
    assert acct.drawdown == pytest.approx(2_000)
    assert acct.position_quantity("B") == -5
    assert acct.position_quantity("C") == 0


def test_instrument_round_price_to_tick_grid() -> None:
    assert Instrument("SPY", min_tick=0.01).round_price(100.0049) == pytest.approx(100.0)
    assert Instrument("ES", min_tick=0.25).round_price(5000.13) == pytest.approx(5000.25)
