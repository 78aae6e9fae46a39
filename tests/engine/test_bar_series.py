"""BarSeries: 5-second slices into bars, history merged by time, partial bars never passed off as whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tui_trader.domain import Bar
from tui_trader.engine.market import BarSeries

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def slice5(second: int, price: float = 100.0) -> Bar:
    """The 5-second slice starting ``second`` seconds after 15:00."""
    return Bar("X", T0 + timedelta(seconds=second), price, price + 0.1, price - 0.1, price, 10.0, price, 1)


def minute(k: int, price: float = 99.0, count: int = 12) -> Bar:
    """A history minute bar ``k`` minutes after 15:00 (negative: before)."""
    return Bar("X", T0 + timedelta(minutes=k), price, price + 0.1, price - 0.1, price, 600.0, price, count)


def test_late_slice_after_the_next_bucket_began_then_ignored_and_nothing_closed() -> None:
    series = BarSeries("X", 60)
    for second in range(0, 60, 5):
        series.add(slice5(second))
    assert series.add(slice5(60, 101.0)) is None  # 15:01 in progress, one slice in

    completed = series.add(slice5(55, 100.5))  # a slice of 15:00 delivered late

    assert completed is None
    assert [b.time for b in series.bars] == [T0]


def test_same_slice_twice_then_the_bar_is_returned_once() -> None:
    series = BarSeries("X", 5)
    assert series.add(slice5(0)) is not None
    assert series.add(slice5(5)) is not None

    again = series.add(slice5(5, 999.0))  # IB sends the last slice again (after a resubscribe)

    assert again is None
    assert len(series.bars) == 2
    assert series.bars[-1].close == 100.0


def test_history_ending_now_then_the_bar_in_progress_is_finished_by_live_slices() -> None:
    series = BarSeries("X", 60)
    series.hold()
    history = [minute(-2), minute(-1), minute(0, price=100.0, count=4)]  # 15:00 only up to 15:00:20
    series.warm(history, now=T0 + timedelta(seconds=20))
    assert [b.time for b in series.bars] == [T0 - timedelta(minutes=2), T0 - timedelta(minutes=1)]

    completed = [series.add(slice5(second, 105.0)) for second in range(20, 60, 5)]

    assert completed[-1] is not None
    last = series.frame().iloc[-1]
    assert (series.frame().index[-1], last["open"], last["close"]) == (T0, 100.0, 105.0)
    assert last["count"] == 4 + 8


def test_live_slices_before_history_then_the_history_is_kept_under_them() -> None:
    series = BarSeries("X", 60)
    series.add(slice5(0))  # live slices arrive while the history request is in flight
    series.add(slice5(5))
    series.hold()
    series.add(slice5(10))

    series.warm([minute(-k) for k in range(20, 0, -1)], now=T0 + timedelta(seconds=12))
    completed = [series.add(slice5(second, 101.0)) for second in range(15, 60, 5)]

    assert len(series.bars) == 21
    assert series.bars[0].time == T0 - timedelta(minutes=20)
    assert completed[-1] is not None
    assert (completed[-1].time, completed[-1].count) == (T0, 12)


def test_slices_stop_mid_bar_and_resume_minutes_later_then_the_cut_off_bar_is_dropped() -> None:
    series = BarSeries("X", 60)
    for second in range(0, 20, 5):  # 15:00:00-15:00:15, then the connection drops
        series.add(slice5(second))

    completed = [series.add(slice5(second, 110.0)) for second in range(620, 660, 5)]  # from 15:10:20

    assert completed == [None] * len(completed)  # neither 15:00 (4 slices) nor 15:10 (from :20) is whole
    assert len(series.bars) == 0


def test_history_at_a_smaller_size_then_folded_into_whole_buckets_only() -> None:
    series = BarSeries("X", 90)
    thirty = [Bar("X", T0 + timedelta(seconds=30 * k), 100 + k, 100 + k, 100 + k, 100 + k, 10, 100 + k, 1)
              for k in range(1, 6)]  # 15:00:30 to 15:03:00: the 15:00:00 bucket is covered only from :30

    series.warm(thirty, now=T0 + timedelta(minutes=3))

    assert [(b.time, b.close) for b in series.bars] == [(T0 + timedelta(seconds=90), 105)]
