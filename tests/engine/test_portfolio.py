"""Portfolio math: long/short, average cost, flips, realized net of commissions, equity, HWM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tui_trader.domain import Fill, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.portfolio import Portfolio

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _fill(side: Side, qty: float, price: float, commission: float | None = None,
          when: datetime = T0) -> Fill:
    return Fill(f"e{side}{qty}{price}{when}", "r", "AAPL", side, qty, price, when, commission=commission)


def _book(cash: float = 10_000.0) -> Portfolio:
    p = Portfolio()
    p.seed(cash, {}, T0)
    return p


def test_buys_average_their_cost() -> None:
    p = _book()
    p.apply_fill(_fill(Side.BUY, 10, 100))
    p.apply_fill(_fill(Side.BUY, 30, 104))
    assert p.positions["AAPL"].quantity == 40
    assert p.positions["AAPL"].avg_cost == pytest.approx(103)


def test_partial_close_of_long_realizes_net_of_commissions() -> None:
    p = _book()
    p.apply_fill(_fill(Side.BUY, 10, 100, commission=1.0))
    p.apply_fill(_fill(Side.SELL, 4, 110, commission=1.0))
    assert p.realized_gross == pytest.approx(40)
    assert p.realized_pnl == pytest.approx(38)
    assert p.positions["AAPL"].quantity == 6


def test_short_then_cover_at_lower_price_realizes_profit() -> None:
    p = _book()
    p.apply_fill(_fill(Side.SELL, 10, 50))
    p.apply_fill(_fill(Side.BUY, 10, 45))
    assert p.realized_gross == pytest.approx(50)
    assert "AAPL" not in p.open_positions()


def test_flip_from_long_to_short_opens_remainder_at_fill_price() -> None:
    p = _book()
    p.apply_fill(_fill(Side.BUY, 10, 100))
    p.apply_fill(_fill(Side.SELL, 15, 90))
    pos = p.positions["AAPL"]
    assert pos.quantity == -5
    assert pos.avg_cost == 90
    assert p.realized_gross == pytest.approx(-100)


def test_equity_is_cash_plus_marked_positions_and_unrealized_follows_mark() -> None:
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 10, 100, commission=2.0))
    p.mark("AAPL", 105)
    assert p.unrealized_pnl == pytest.approx(50)
    assert p.equity == pytest.approx(10_000 - 2 + 50)


def test_high_water_mark_and_drawdown_follow_equity() -> None:
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 10, 100))
    p.mark("AAPL", 120)
    p.mark("AAPL", 110)
    snap = p.snapshot(T0, "DU1", ())
    assert snap.high_water_mark == pytest.approx(10_200)
    assert snap.drawdown == pytest.approx(100)
    assert snap.gross_exposure == pytest.approx(1100)


def test_day_pnl_restarts_at_the_next_trading_day() -> None:
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 10, 100))
    p.apply_fill(_fill(Side.SELL, 10, 101))
    assert p.snapshot(T0, "DU1", ()).realized_pnl_today == pytest.approx(10)
    tomorrow = p.snapshot(T0 + timedelta(days=1), "DU1", ())
    assert tomorrow.realized_pnl_today == 0
    assert tomorrow.day_pnl == pytest.approx(0)


def test_next_trading_day_then_each_symbol_s_realized_starts_over_and_yesterday_s_flat_symbols_go() -> None:
    # Found by QA: after midnight New York the positions pane's SPY row still showed yesterday's realized -2.34
    # beside a TOTAL and a day realized of 0.00.
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 10, 100))
    p.apply_fill(_fill(Side.SELL, 10, 101))  # flat, +10
    p.apply_fill(Fill("m1", "r", "MSFT", Side.BUY, 5, 200, T0))
    p.apply_fill(Fill("m2", "r", "MSFT", Side.SELL, 2, 210, T0))  # long 3, +20
    p.snapshot(T0, "DU1", ())
    assert {s: q.realized_pnl for s, q in p.positions.items()} == {"AAPL": 10, "MSFT": 20}

    p.snapshot(T0 + timedelta(days=1), "DU1", ())

    assert {s: (q.quantity, q.realized_pnl) for s, q in p.positions.items()} == {"MSFT": (3, 0)}
    assert p.positions["MSFT"].avg_cost == 200


def test_losing_streak_counts_consecutive_losing_closes() -> None:
    p = _book()
    for price in (99, 98):
        p.apply_fill(_fill(Side.BUY, 1, 100))
        p.apply_fill(_fill(Side.SELL, 1, price))
    assert p.losing_streak == 2


def test_fill_of_an_earlier_day_then_today_keeps_its_counters() -> None:
    # Arrange: today, a round trip that lost 20 after a gain took equity to a high-water mark.
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 10, 100, when=T0))
    p.mark("AAPL", 110)
    p.apply_fill(_fill(Side.SELL, 10, 98, when=T0 + timedelta(minutes=5)))
    before = p.snapshot(T0 + timedelta(minutes=6), "DU1", ())
    # Act: an execution of yesterday arrives (replayed after a restart), then the next snapshot.
    p.apply_fill(_fill(Side.BUY, 5, 90, when=T0 - timedelta(days=1)))
    after = p.snapshot(T0 + timedelta(minutes=7), "DU1", ())
    # Assert: today's loss, trade count, day P&L and high-water mark are as they were; the fill is booked
    # (what it moved the equity by, at the last mark, moved the start of the day with it: yesterday's).
    assert before.realized_pnl_today == pytest.approx(-20)
    assert (after.realized_pnl_today, after.trades_today) == (before.realized_pnl_today, before.trades_today)
    assert (after.day_pnl, after.high_water_mark) == (before.day_pnl, before.high_water_mark)
    assert after.start_of_day_equity - before.start_of_day_equity == pytest.approx(after.equity - before.equity)
    assert after.positions["AAPL"].quantity == 5
    assert p.cash == pytest.approx(10_000 - 20 - 450)


def test_snapshot_at_an_earlier_time_then_the_day_stays() -> None:
    # Arrange
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 10, 100, when=T0 + timedelta(days=1)))  # the next day: today starts over
    # Act: a clock a day behind asks for a snapshot.
    behind = p.snapshot(T0, "DU1", ())
    # Assert: still the later day, its trade counted.
    assert behind.trades_today == 1


def test_losing_fill_of_an_earlier_day_then_the_last_loss_stays_the_latest() -> None:
    # Arrange: a loss today.
    p = _book(10_000)
    p.apply_fill(_fill(Side.BUY, 1, 100, when=T0))
    p.apply_fill(_fill(Side.SELL, 1, 99, when=T0 + timedelta(minutes=1)))
    # Act: yesterday's losing round trip is replayed.
    p.apply_fill(_fill(Side.BUY, 1, 100, when=T0 - timedelta(days=1)))
    p.apply_fill(_fill(Side.SELL, 1, 98, when=T0 - timedelta(days=1, minutes=-1)))
    # Assert: the cooldown still counts from today's loss; the streak counts both.
    assert p.last_loss_at == T0 + timedelta(minutes=1)
    assert p.losing_streak == 2


def test_account_before_the_broker_or_a_journal_gave_it_then_not_known() -> None:
    # The console showed "Equity 0.00" for a --paper session that never reached its gateway.
    fresh = Portfolio()
    assert fresh.snapshot(T0, "", ()).known is False
    assert _book().snapshot(T0, "DU1", ()).known is True
    restored = Portfolio()
    restored.restore(_book(2_500.0).state())
    assert restored.snapshot(T0, "", ()).known is True
    assert restored.cash == 2_500.0


def _of(strategy: str, side: Side = Side.BUY, reduce_only: bool = False) -> Order:
    """A filled order of ``strategy`` (``"manual"``: the operator's ticket)."""
    return Order(f"r-{strategy}", OrderTicket("AAPL", side, 10, OrderType.MKT, strategy=strategy,
                                              reduce_only=reduce_only), OrderStatus.FILLED, T0, T0)


@pytest.mark.parametrize(("fills", "owner"), [
    ([(Side.BUY, 10, "ema_cross")], "ema_cross"),  # opened from flat by its entry
    ([(Side.BUY, 10, "ema_cross"), (Side.BUY, 5, "ema_cross")], "ema_cross"),  # its own entry, filled in parts
    ([(Side.BUY, 10, "ema_cross"), (Side.BUY, 5, "manual")], ""),  # a ticket added to it
    ([(Side.BUY, 10, "ema_cross"), (Side.BUY, 5, "macd")], ""),  # another strategy added to it
    ([(Side.BUY, 10, "ema_cross"), (Side.BUY, 5, None)], ""),  # a fill of an order nobody knows added to it
    ([(Side.BUY, 10, "ema_cross"), (Side.SELL, 4, "manual")], "ema_cross"),  # a ticket only reduced it
    ([(Side.BUY, 10, "ema_cross"), (Side.SELL, 15, "manual")], "manual"),  # a ticket reversed it
    ([(Side.BUY, 10, "ema_cross"), (Side.SELL, 10, "manual"), (Side.BUY, 5, "macd")], "macd"),  # flat, then anew
    ([(Side.BUY, 10, "manual")], "manual"),
    ([(Side.BUY, 10, None)], ""),
])
def test_owner_when_fills_open_add_to_or_reduce_a_position_then_only_one_opener_alone_owns_it(
        fills: list[tuple[Side, float, str | None]], owner: str) -> None:
    p = _book()
    for n, (side, qty, strategy) in enumerate(fills):
        p.apply_fill(_fill(side, qty, 100 + n), _of(strategy, side) if strategy is not None else None)
    assert p.positions["AAPL"].owner == owner


def test_owner_when_an_exit_overshoots_flat_then_nobody_owns_the_position_it_opened() -> None:
    # A strategy's exit (reduce-only) filled after the stop had closed the position: the short it opened
    # is no entry of the strategy's, so its next exit signal must not read it as its own.
    p = _book()
    p.apply_fill(_fill(Side.BUY, 10, 100), _of("ema_cross"))
    p.apply_fill(_fill(Side.SELL, 20, 99), _of("ema_cross", Side.SELL, reduce_only=True))
    assert p.positions["AAPL"].quantity == -10
    assert p.positions["AAPL"].owner == ""


@pytest.mark.parametrize(("broker", "owner"), [(6, "ema_cross"), (15, ""), (-5, "")])
def test_owner_when_adjusted_to_the_broker_then_kept_only_for_a_part_of_it(broker: float, owner: str) -> None:
    p = _book()
    p.apply_fill(_fill(Side.BUY, 10, 100), _of("ema_cross"))
    p.adjust("AAPL", broker, 100.0, T0)
    assert p.positions["AAPL"].owner == owner


def test_owner_when_the_book_is_restored_then_kept_and_none_from_a_state_written_before_owners() -> None:
    p = _book()
    p.apply_fill(_fill(Side.BUY, 10, 100), _of("ema_cross"))
    state = p.state()
    restored = Portfolio()
    restored.restore(state)
    assert restored.positions["AAPL"].owner == "ema_cross"
    older = Portfolio()
    older.restore({k: v for k, v in state.items() if k != "owners"})
    assert older.positions["AAPL"].owner == ""
