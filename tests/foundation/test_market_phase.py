"""The market phase rule: open, pre/post-market, closed or unknown, from an instrument's hours, in its zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from tui_trader.domain.market import Instrument, MarketPhase, Session, market_phase

P = MarketPhase
NY, TOKYO = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
TUESDAY = date(2024, 3, 5)


def hours(day: date, zone: ZoneInfo, *spans: tuple[str, str]) -> tuple[Session, ...]:
    """Sessions on ``day`` from local ``HH:MM`` pairs (in ``zone``)."""
    def at(text: str) -> datetime:
        return datetime.combine(day, time.fromisoformat(text), zone)

    return tuple(Session(at(start), at(end)) for start, end in spans)


STOCK = Instrument("AAPL", trading_sessions=hours(TUESDAY, NY, ("04:00", "20:00")),
                   liquid_sessions=hours(TUESDAY, NY, ("09:30", "16:00")))
"""A US stock: extended hours 04:00-20:00, regular 09:30-16:00 New York."""


@pytest.mark.parametrize(("utc", "phase"), [
    ("05 03:59", P.CLOSED), ("05 08:59", P.CLOSED),  # 22:59 the evening before, 03:59 EST: before the 04:00 open
    ("05 09:00", P.PRE), ("05 14:29", P.PRE),        # 04:00-09:29 EST
    ("05 14:30", P.OPEN), ("05 20:59", P.OPEN),      # 09:30-15:59
    ("05 21:00", P.POST), ("06 00:59", P.POST),      # 16:00-19:59
    ("06 01:00", P.CLOSED),                          # 20:00: the close is exclusive
])
def test_market_phase_of_a_us_stock_at_utc_times_then_the_phase_in_new_york(utc: str, phase: MarketPhase) -> None:
    now = datetime.strptime(f"2024-03-{utc}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert market_phase(STOCK, now) is phase


def test_market_phase_when_the_hours_are_not_known_then_none() -> None:
    assert market_phase(Instrument("AAPL"), datetime(2024, 3, 5, 15, 0, tzinfo=UTC)) is None


def test_market_phase_on_a_weekend_between_listed_days_then_closed() -> None:
    friday, monday = date(2024, 3, 8), date(2024, 3, 11)
    extended, regular = ("04:00", "20:00"), ("09:30", "16:00")
    inst = Instrument("AAPL", trading_sessions=hours(friday, NY, extended) + hours(monday, NY, extended),
                      liquid_sessions=hours(friday, NY, regular) + hours(monday, NY, regular))
    assert market_phase(inst, datetime(2024, 3, 9, 17, 0, tzinfo=UTC)) is P.CLOSED


def test_market_phase_with_liquid_hours_only_then_open_inside_them_and_closed_outside() -> None:
    inst = Instrument("AAPL", liquid_sessions=STOCK.liquid_sessions)
    assert market_phase(inst, datetime(2024, 3, 5, 15, 0, tzinfo=UTC)) is P.OPEN
    assert market_phase(inst, datetime(2024, 3, 5, 10, 0, tzinfo=UTC)) is P.CLOSED


def test_market_phase_of_a_tokyo_pre_open_that_is_the_evening_before_in_utc_then_pre() -> None:
    # The pre-open 08:00-09:00 JST is its own trading session, and the regular session starts at its end:
    # 09:00 JST on the 6th is 00:00 UTC on the 6th, while 08:30 JST is 23:30 UTC on the 5th. The day that counts
    # is Tokyo's, the instrument's zone: the regular session is still to come that day.
    day = date(2024, 3, 6)
    inst = Instrument("7203", time_zone="Asia/Tokyo",
                      trading_sessions=hours(day, TOKYO, ("08:00", "09:00"), ("09:00", "11:30"), ("12:30", "15:00")),
                      liquid_sessions=hours(day, TOKYO, ("09:00", "11:30"), ("12:30", "15:00")))
    assert market_phase(inst, datetime(2024, 3, 5, 23, 30, tzinfo=UTC)) is P.PRE
    assert market_phase(inst, datetime(2024, 3, 6, 3, 0, tzinfo=UTC)) is P.CLOSED  # 12:00 JST: the lunch break
    assert market_phase(inst, datetime(2024, 3, 6, 4, 0, tzinfo=UTC)) is P.OPEN    # 13:00 JST


def test_market_phase_of_a_future_overnight_before_the_regular_session_then_pre_and_after_it_post() -> None:
    # CME: trading from Sunday 17:00 to Monday 16:00 Chicago, regular hours 08:30-15:00 on Monday. Sunday evening
    # is another day in Chicago, but the regular session comes before this trading session ends: pre.
    chicago = ZoneInfo("America/Chicago")
    sunday, monday = date(2024, 3, 10), date(2024, 3, 11)
    trading = (Session(datetime.combine(sunday, time(17), chicago), datetime.combine(monday, time(16), chicago)),)
    inst = Instrument("ES", time_zone="America/Chicago", trading_sessions=trading,
                      liquid_sessions=hours(monday, chicago, ("08:30", "15:00")))
    assert market_phase(inst, datetime.combine(sunday, time(19), chicago)) is P.PRE
    assert market_phase(inst, datetime.combine(monday, time(15, 30), chicago)) is P.POST
