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
    series.warm(history, asked=T0 + timedelta(seconds=20))
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

    series.warm([minute(-k) for k in range(20, 0, -1)], asked=T0 + timedelta(seconds=12))
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

    series.warm(thirty, asked=T0 + timedelta(minutes=3))

    assert [(b.time, b.close) for b in series.bars] == [(T0 + timedelta(seconds=90), 105)]


# -- the hand-over from history to live slices (warm-up at start, re-warm after a reconnect) ----------


def test_history_asked_in_a_bar_s_last_seconds_then_the_held_last_slice_finishes_it() -> None:
    series = BarSeries("X", 60)
    series.hold()
    series.add(slice5(55, 105.0))  # delivered at 15:01:00, while the history asked at 15:00:58 was on its way

    completed = series.warm([minute(-1), minute(0, price=100.0, count=11)], asked=T0 + timedelta(seconds=58))

    assert completed is not None
    assert (completed.time, completed.open, completed.close, completed.count) == (T0, 100.0, 105.0, 12)
    assert [b.time for b in series.bars] == [T0 - timedelta(minutes=1), T0]


def test_history_reaching_into_the_next_bar_then_that_bar_is_finished_by_live_slices() -> None:
    series = BarSeries("X", 60)
    series.hold()
    series.add(slice5(55, 105.0))
    history = [minute(-1), minute(0), minute(1, price=101.0, count=1)]  # IB answered after 15:01:00

    series.warm(history, asked=T0 + timedelta(seconds=58))
    completed = [series.add(slice5(second, 106.0)) for second in range(60, 120, 5)]

    assert completed[-1] is not None
    assert (completed[-1].time, completed[-1].open, completed[-1].close) == (T0 + timedelta(minutes=1), 101.0, 106.0)
    assert series.bars[-2] == minute(0)  # whole in history: the held slice of it is not added on top


def test_history_lagging_behind_the_request_then_live_slices_from_the_bar_s_start_make_it() -> None:
    series = BarSeries("X", 60)
    series.hold()
    for second in range(-10, 20, 5):  # subscribed at 14:59:50
        series.add(slice5(second))

    series.warm([minute(-2), minute(-1)], asked=T0 + timedelta(seconds=20))  # no 15:00 bar in the answer yet
    completed = [series.add(slice5(second)) for second in range(20, 60, 5)]

    assert completed[-1] is not None
    assert (completed[-1].time, completed[-1].count) == (T0, 12)
    assert [b.time for b in series.bars] == [T0 - timedelta(minutes=k) for k in (2, 1, 0)]


def test_history_lagging_and_live_slices_from_mid_bar_then_that_bar_is_not_stored() -> None:
    series = BarSeries("X", 60)
    series.hold()
    series.add(slice5(10))  # subscribed at 15:00:10: nothing covers 15:00:00-15:00:10

    series.warm([minute(-2), minute(-1)], asked=T0 + timedelta(seconds=20))
    completed = [series.add(slice5(second)) for second in range(15, 120, 5)]

    assert [b.time for b in series.bars] == [T0 - timedelta(minutes=k) for k in (2, 1)] + [T0 + timedelta(minutes=1)]
    assert [c.time for c in completed if c is not None] == [T0 + timedelta(minutes=1)]


def test_live_slices_held_before_the_request_then_history_has_them_and_they_are_not_counted_twice() -> None:
    series = BarSeries("X", 60)
    series.hold()
    for second in range(5, 20, 5):  # subscribed at 15:00:05, history asked at 15:00:20
        series.add(slice5(second, 90.0))

    series.warm([minute(-1), minute(0, price=100.0, count=4)], asked=T0 + timedelta(seconds=20))
    completed = [series.add(slice5(second, 101.0)) for second in range(20, 60, 5)]

    assert completed[-1] is not None
    assert (completed[-1].open, completed[-1].close, completed[-1].count) == (100.0, 101.0, 4 + 8)
    assert completed[-1].volume == 600.0 + 8 * 10.0


def test_reconnect_within_a_bar_then_history_fills_the_outage_and_live_slices_finish_it() -> None:
    series = BarSeries("X", 60)
    for second in range(0, 20, 5):  # 15:00:00-15:00:15 live, then the connection drops
        series.add(slice5(second))
    series.hold()  # reconnected: the re-warm asks at 15:00:40

    series.warm([minute(-1), minute(0, price=100.0, count=8)], asked=T0 + timedelta(seconds=40))
    completed = [series.add(slice5(second, 101.0)) for second in range(40, 60, 5)]

    assert completed[-1] is not None
    assert (completed[-1].time, completed[-1].open, completed[-1].close) == (T0, 100.0, 101.0)
    assert completed[-1].count == 8 + 4


def test_reconnect_minutes_later_then_history_replaces_the_cut_off_bar_and_seeds_the_current() -> None:
    series = BarSeries("X", 60)
    for second in range(0, 20, 5):
        series.add(slice5(second))
    series.hold()
    history = [minute(k) for k in range(-2, 3)] + [minute(3, price=103.0, count=6)]  # asked at 15:03:30

    series.warm(history, asked=T0 + timedelta(minutes=3, seconds=30))
    completed = [series.add(slice5(second, 104.0)) for second in range(210, 240, 5)]

    assert [b.time for b in series.bars][-5:] == [T0 + timedelta(minutes=k) for k in range(-1, 4)]
    assert series.bars[-4] == minute(0)  # the history's whole 15:00, not the live four slices of it
    assert completed[-1] is not None
    assert (completed[-1].open, completed[-1].close, completed[-1].count) == (103.0, 104.0, 6 + 6)


def test_live_bar_whole_up_to_the_request_then_it_is_kept_rather_than_the_history() -> None:
    series = BarSeries("X", 60)
    for second in range(0, 40, 5):  # live without a break, 15:00:00-15:00:35
        series.add(slice5(second))
    series.hold()

    series.warm([minute(-1), minute(0, price=50.0, count=7)], asked=T0 + timedelta(seconds=38))
    completed = [series.add(slice5(second)) for second in range(40, 60, 5)]

    assert completed[-1] is not None
    assert (completed[-1].open, completed[-1].count, completed[-1].volume) == (100.0, 12, 120.0)


def test_5_second_bars_asked_mid_slice_then_the_held_slice_finishes_the_bar() -> None:
    series = BarSeries("X", 5)
    series.hold()
    series.add(slice5(20, 105.0))
    history = [slice5(second, 99.0) for second in range(0, 25, 5)]  # the 15:00:20 bar only up to :22

    completed = series.warm(history, asked=T0 + timedelta(seconds=22))

    assert completed is not None
    assert (completed.time, completed.close) == (T0 + timedelta(seconds=20), 105.0)
    assert len(series.bars) == 5
