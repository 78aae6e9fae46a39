"""Bars on the exchange's clock: boundaries at New York clock times across the clock changes, 5-second
slices aggregated across them, and the warm-up's history agreeing with live slices at a boundary."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tui_trader.domain import Bar
from tui_trader.domain.market import Instrument, Session
from tui_trader.engine.market import BarClock, BarSeries, MarketState

NY = ZoneInfo("America/New_York")
SPRING = datetime(2024, 3, 10, tzinfo=NY)
"""New York's clock jumps from 02:00 to 03:00 (07:00 UTC)."""
FALL = datetime(2024, 11, 3, tzinfo=NY)
"""New York's clock goes back from 02:00 to 01:00 (06:00 UTC): 01:00-02:00 happens twice."""


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def ny(when: datetime) -> str:
    """``when`` as New York's clock reads it."""
    return when.astimezone(NY).strftime("%d %H:%M %Z")


def spans(clock: BarClock, first: datetime, count: int) -> list[tuple[str, str]]:
    """``count`` consecutive bars from the one holding ``first``, as New York clock readings."""
    out, when = [], first
    for _ in range(count):
        start, end = clock.span(when)
        out.append((ny(start), ny(end)))
        when = end
    return out


def test_4_hour_bars_in_winter_and_summer_then_they_begin_at_the_same_new_york_clock_times() -> None:
    clock = BarClock(14_400, "America/New_York")

    winter = spans(clock, utc(5, 15), 3)  # epoch-aligned they began at 03:00, 07:00, 11:00 EST
    summer = spans(clock, utc(5, 15, month=7), 3)

    assert winter == [("05 08:00 EST", "05 12:00 EST"), ("05 12:00 EST", "05 16:00 EST"),
                      ("05 16:00 EST", "05 20:00 EST")]
    assert summer == [("05 08:00 EDT", "05 12:00 EDT"), ("05 12:00 EDT", "05 16:00 EDT"),
                      ("05 16:00 EDT", "05 20:00 EDT")]


def test_2_hour_bars_when_the_clock_springs_forward_then_the_bar_from_midnight_runs_to_4() -> None:
    clock = BarClock(7_200, "America/New_York")

    got = spans(clock, SPRING - timedelta(hours=2), 4)

    assert got == [("09 22:00 EST", "10 00:00 EST"), ("10 00:00 EST", "10 04:00 EDT"),  # 02:00 never happens
                   ("10 04:00 EDT", "10 06:00 EDT"), ("10 06:00 EDT", "10 08:00 EDT")]


def test_2_hour_bars_when_the_clock_falls_back_then_the_bar_from_midnight_runs_three_hours() -> None:
    clock = BarClock(7_200, "America/New_York")

    start, end = clock.span(FALL + timedelta(minutes=90))

    assert (ny(start), ny(end)) == ("03 00:00 EDT", "03 02:00 EST")
    assert end - start == timedelta(hours=3)


def test_1_hour_bars_when_the_clock_falls_back_then_the_bar_of_01_00_comes_twice() -> None:
    clock = BarClock(3_600, "America/New_York")

    got = spans(clock, FALL, 4)

    assert got == [("03 00:00 EDT", "03 01:00 EDT"), ("03 01:00 EDT", "03 01:00 EST"),
                   ("03 01:00 EST", "03 02:00 EST"), ("03 02:00 EST", "03 03:00 EST")]


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (FALL, 25), (SPRING + timedelta(days=2), 24)])
def test_1_day_bars_then_each_is_the_new_york_calendar_day(day: datetime, hours: int) -> None:
    clock = BarClock(86_400, "America/New_York")

    start, end = clock.span(day + timedelta(hours=12))

    assert (start, end) == (day.astimezone(UTC), (day + timedelta(days=1)).astimezone(UTC))
    assert end - start == timedelta(hours=hours)


def test_a_size_that_does_not_divide_a_day_then_its_bars_lie_on_the_epoch() -> None:
    clock = BarClock(420, "America/New_York")  # 7 minutes recur at no fixed time of day

    start, end = clock.span(utc(5, 15, 3))

    assert start.timestamp() % 420 == 0
    assert end - start == timedelta(minutes=7)


def clock_readings(zone: str, first: datetime, last: datetime) -> list[tuple[int, int]]:
    """Every 5-second instant in ``[first, last)`` with the seconds since midnight ``zone``'s clock reads then."""
    tz, out = ZoneInfo(zone), []
    for t in range(int(first.timestamp()), int(last.timestamp()), 5):
        local = datetime.fromtimestamp(t, tz)
        out.append((t, local.hour * 3600 + local.minute * 60 + local.second))
    return out


@pytest.mark.parametrize(("zone", "day"), [
    ("America/New_York", SPRING), ("America/New_York", FALL),
    ("Australia/Lord_Howe", datetime(2024, 4, 7, tzinfo=UTC)),  # Lord Howe's clock changes by 30 minutes
    ("Australia/Lord_Howe", datetime(2024, 10, 6, tzinfo=UTC))])
def test_span_around_a_clock_change_then_it_runs_between_consecutive_clock_boundaries(zone: str,
                                                                                     day: datetime) -> None:
    first, last = day - timedelta(days=2), day + timedelta(days=2)  # the change lies within a day of ``day``
    readings = clock_readings(zone, first, last)
    change = next(t for (t, a), (_, b) in zip(readings, readings[1:], strict=False) if (b - a) % 86_400 != 5)
    near = range(change - 3700, change + 3700, 5)  # every slice within an hour of the change, then every 595 s
    times = [*near, *range(int((day - timedelta(hours=23)).timestamp()), int((day + timedelta(hours=23)).timestamp()),
                           595)]
    for size in (5, 60, 900, 3600, 5400, 7200, 14400, 86400):
        clock = BarClock(size, zone)
        bounds = [t for t, seconds in readings if seconds % size == 0]  # found the slow way
        for t in times:
            i = bisect_right(bounds, t)
            assert 0 < i < len(bounds)
            start, end = clock.span(datetime.fromtimestamp(t, UTC))
            assert (start.timestamp(), end.timestamp()) == (bounds[i - 1], bounds[i]), (size, t)


def slices(symbol: str, first: datetime, last: datetime, price: float = 100.0) -> list[Bar]:
    """5-second slices from ``first`` up to (not including) ``last``, each one trade of 10 at ``price``."""
    count = int((last - first).total_seconds()) // 5
    return [Bar(symbol, first + timedelta(seconds=5 * k), price, price + 0.1, price - 0.1, price, 10.0, price, 1)
            for k in range(count)]


def test_live_slices_across_the_spring_forward_then_one_2_hour_bar_from_midnight_to_4() -> None:
    series = BarSeries("X", 7_200)  # New York
    midnight, four = SPRING.astimezone(UTC), datetime(2024, 3, 10, 4, tzinfo=NY).astimezone(UTC)

    completed = [(s.time, bar) for s in slices("X", midnight, four + timedelta(hours=2))
                 if (bar := series.add(s)) is not None]

    assert [(when, bar.time, bar.count) for when, bar in completed] == [
        (four - timedelta(seconds=5), midnight, 3 * 720),  # three hours of slices, finished by 03:59:55 EDT
        (four + timedelta(hours=2) - timedelta(seconds=5), four, 2 * 720)]


def test_live_slices_across_the_fall_back_then_the_01_00_hour_is_two_bars() -> None:
    series = BarSeries("X", 3_600)
    one_edt = datetime(2024, 11, 3, 1, tzinfo=NY).astimezone(UTC)

    for s in slices("X", one_edt, one_edt + timedelta(hours=2)):
        series.add(s)

    assert [(ny(b.time), b.count) for b in series.bars] == [("03 01:00 EDT", 720), ("03 01:00 EST", 720)]


def hours(first: datetime, count: int, price: float = 99.0) -> list[Bar]:
    """History as IB sends it for ``'1 hour'``: bars on New York's clock hours from ``first``."""
    return [Bar("X", first + timedelta(hours=k), price, price + 1, price - 1, price, 7200.0, price, 720)
            for k in range(count)]


def test_warm_up_mid_bar_on_the_fall_back_day_then_live_slices_finish_the_bar_history_began() -> None:
    series = BarSeries("X", 7_200)
    series.hold()
    midnight = FALL.astimezone(UTC)  # 04:00 UTC; the bar runs to 02:00 EST (07:00 UTC)
    asked = midnight + timedelta(hours=2, minutes=59)  # 01:59 EST
    history = hours(midnight - timedelta(hours=24), 26) + [
        Bar("X", midnight + timedelta(hours=2), 99.0, 101.0, 98.0, 99.5, 590.0, 99.2, 59)]  # 01:00 EST so far

    series.warm(history, asked)
    live = [bar for s in slices("X", asked, asked + timedelta(minutes=2), 102.0) if (bar := series.add(s))]

    assert [ny(b.time) for b in list(series.bars)[-3:-1]] == ["02 20:00 EDT", "02 22:00 EDT"]
    assert [(ny(b.time), b.open, b.high, b.close, b.count) for b in live] == [
        ("03 00:00 EDT", 99.0, 102.1, 102.0, 720 + 720 + 59 + 12)]  # history's three hours, then 12 live slices
    assert series.bars[-1].time == live[0].time


def test_use_zone_of_another_exchange_then_bars_of_the_old_clock_dropped_and_history_rebucketed() -> None:
    series = BarSeries("X", 14_400)
    history = hours(datetime(2024, 3, 5, 5, tzinfo=UTC), 24)  # 00:00 EST onwards
    series.warm(history, asked=datetime(2024, 3, 6, 5, tzinfo=UTC))
    assert [ny(b.time)[3:] for b in series.bars][:2] == ["00:00 EST", "04:00 EST"]

    series.use_zone("Europe/Berlin")
    assert not series.bars
    series.warm(history, asked=datetime(2024, 3, 6, 5, tzinfo=UTC))

    berlin = [b.time.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for b in series.bars]
    assert berlin[:2] == ["08:00", "12:00"]  # 06:00 CET, the oldest, only in part: left out


def test_instrument_back_without_its_details_then_it_keeps_the_zone_its_bars_follow() -> None:
    market = MarketState.empty()
    hours_of_day = (Session(utc(5, 14), utc(5, 21)),)
    market.set_instruments({"X": Instrument("X", time_zone="Europe/Berlin", trading_sessions=hours_of_day)})

    market.set_instruments({"X": Instrument("X")})  # a bare contract: the default zone, no hours

    assert market.instruments["X"].time_zone == "Europe/Berlin"
