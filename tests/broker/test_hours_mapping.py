"""Pure parsing of IB's tradingHours / liquidHours text and timeZoneId into domain sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from ib_async import Contract, ContractDetails

from tui_trader.broker.ib import mapping as m
from tui_trader.domain import Session

NY = ZoneInfo("America/New_York")


def _ny(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY)


def test_parse_sessions_when_current_format_then_one_session_per_open_day() -> None:
    text = "20240721:CLOSED;20240722:0930-20240722:1600;20240723:0930-20240723:1600"
    assert m.parse_sessions(text, "US/Eastern") == (
        Session(_ny(2024, 7, 22, 9, 30), _ny(2024, 7, 22, 16)),
        Session(_ny(2024, 7, 23, 9, 30), _ny(2024, 7, 23, 16)),
    )


def test_parse_sessions_when_session_crosses_midnight_then_ends_next_day() -> None:
    (session,) = m.parse_sessions("20240721:1700-20240722:1600", "CST (Central Standard Time)")
    chicago = ZoneInfo("America/Chicago")
    assert session.start == datetime(2024, 7, 21, 17, tzinfo=chicago)
    assert session.end == datetime(2024, 7, 22, 16, tzinfo=chicago)
    assert session.contains(datetime(2024, 7, 22, 3, tzinfo=chicago))


def test_parse_sessions_when_legacy_format_then_time_ranges_and_overnight_wrap() -> None:
    sessions = m.parse_sessions("20090507:0700-1830,1830-0230;20090508:CLOSED", "EST")
    assert sessions == (
        Session(_ny(2009, 5, 7, 7), _ny(2009, 5, 7, 18, 30)),
        Session(_ny(2009, 5, 7, 18, 30), _ny(2009, 5, 8, 2, 30)),
    )


def test_parse_sessions_when_est_alias_then_daylight_saving_applies() -> None:
    (summer,) = m.parse_sessions("20240722:0930-20240722:1600", "EST")
    assert summer.start.astimezone(UTC) == datetime(2024, 7, 22, 13, 30, tzinfo=UTC)
    (winter,) = m.parse_sessions("20240122:0930-20240122:1600", "EST (Eastern Standard Time)")
    assert winter.start.astimezone(UTC) == datetime(2024, 1, 22, 14, 30, tzinfo=UTC)


def test_parse_sessions_when_end_is_2400_then_next_midnight() -> None:
    (session,) = m.parse_sessions("20240722:0000-2400", "US/Eastern")
    assert session.end == _ny(2024, 7, 23, 0)


def test_parse_sessions_when_every_day_closed_or_empty_then_no_sessions() -> None:
    assert m.parse_sessions("20240720:CLOSED;20240721:CLOSED;", "US/Eastern") == ()
    assert m.parse_sessions("", "US/Eastern") == ()


@pytest.mark.parametrize(("text", "zone"), [
    ("20240722:0930-20240722:1600", "Mars/Olympus"),
    ("20240722:0930", "US/Eastern"),
    ("2024072:0930-1600", "US/Eastern"),
    ("20240722:0975-1600", "US/Eastern"),
    ("20240722:1600-20240722:0930", "US/Eastern"),
])
def test_parse_sessions_when_malformed_then_value_error(text: str, zone: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the offending part
        m.parse_sessions(text, zone)


def test_instrument_from_details_fills_sessions_tick_and_zone() -> None:
    details = ContractDetails(
        contract=Contract(symbol="AAPL", conId=265598, exchange="SMART", currency="USD"),
        minTick=0.01, timeZoneId="US/Eastern", longName="APPLE INC",
        tradingHours="20240722:0400-20240722:2000", liquidHours="20240722:0930-20240722:1600")
    inst = m.instrument_from_details(details)
    assert inst.time_zone == "US/Eastern"
    assert inst.min_tick == 0.01
    assert inst.trading_sessions == (Session(_ny(2024, 7, 22, 4), _ny(2024, 7, 22, 20)),)
    assert inst.liquid_sessions == (Session(_ny(2024, 7, 22, 9, 30), _ny(2024, 7, 22, 16)),)


def test_instrument_from_details_when_hours_unreadable_then_no_sessions() -> None:
    details = ContractDetails(contract=Contract(symbol="X", conId=1), timeZoneId="Nowhere",
                              liquidHours="20240722:0930-20240722:1600")
    assert m.instrument_from_details(details).liquid_sessions == ()
