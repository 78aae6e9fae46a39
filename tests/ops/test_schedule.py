"""Schedule: close and restart windows, early closes and holidays, the guard's way to REDUCING and back."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tui_trader.config.sections import ScheduleSettings
from tui_trader.domain.enums import TradingState
from tui_trader.domain.market import Instrument, Session
from tui_trader.ops.schedule import (
    Phase,
    ScheduleGuard,
    active_window,
    close_window,
    flatten_due,
    restart_window,
    sessions_of,
)

NY = ZoneInfo("America/New_York")
A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def at(day: int, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 3, day, h, m, tzinfo=NY)


def session(day: int, close: str = "16:00") -> Session:
    d = date(2026, 3, day)
    h, m = map(int, close.split(":"))
    return Session(datetime.combine(d, time(9, 30), NY), datetime.combine(d, time(h, m), NY))


# Tue 3, Wed 4, Thu 5 closes early at 13:00, Fri 6 is a holiday (no session), Mon 9.
SESSIONS = (session(3), session(4), session(5, "13:00"), session(9))


def settings(**changes: Any) -> ScheduleSettings:
    base: dict[str, Any] = dict(gateway_restart="23:45", gateway_restart_zone="America/New_York",
                                restart_duration_min=15, reduce_before_restart_min=10, reduce_before_close_min=10)
    base.update(changes)
    return ScheduleSettings(**base)


def test_sessions_of_instruments_prefers_liquid_hours() -> None:
    trading = (Session(at(3, "04:00"), at(3, "20:00")),)
    inst = Instrument("AAPL", trading_sessions=trading, liquid_sessions=(session(3),))
    assert sessions_of([inst]) == (session(3),)
    assert sessions_of([inst], use_liquid=False) == trading


@pytest.mark.parametrize(("now", "active"), [
    (at(3, "15:49"), False), (at(3, "15:50"), True), (at(3, "23:00"), True), (at(4, "09:29"), True),
    (at(4, "09:30"), False), (at(5, "12:49"), False), (at(5, "12:50"), True),  # early close
    (at(6, "12:00"), True), (at(9, "09:30"), False),  # a holiday has no session: reduced until Monday
])
def test_close_window(now: datetime, active: bool) -> None:
    assert (close_window(now, SESSIONS, 10) is not None) is active


@pytest.mark.parametrize("now", [at(3, "08:00"), at(4, "00:20"), at(1, "12:00")])
def test_close_window_before_the_first_listed_open_then_closed_until_it(now: datetime) -> None:
    """Contract details read before the open, after midnight or on a weekend begin with the next session."""
    window = close_window(now, SESSIONS[SESSIONS.index(session(4)) if now.day == 4 else 0:], 10)
    assert window is not None
    assert window.end == (at(4, "09:30") if now.day == 4 else at(3, "09:30"))
    assert close_window(now, (), 10) is None  # hours not known: no window


def test_restart_window_around_midnight_in_its_zone() -> None:
    w = restart_window(at(3, "23:50"), "23:45", "America/New_York", 15, 10)
    assert (w.start, w.end) == (at(3, "23:35"), at(4, "00:00"))
    nxt = restart_window(at(4, "00:00"), "23:45", "America/New_York", 15, 10)
    assert nxt.start == at(4, "23:35")
    utc = restart_window(at(3, "12:00"), "05:00", "UTC", 15, 10)
    assert utc.start == datetime(2026, 3, 4, 4, 50, tzinfo=ZoneInfo("UTC"))


def test_active_window_prefers_the_restart_and_can_be_switched_off() -> None:
    assert "restart" in active_window(at(3, "23:40"), settings(), SESSIONS).reason  # type: ignore[union-attr]
    assert active_window(at(3, "23:40"), settings(gateway_restart=None, reduce_before_close_min=None),
                         SESSIONS) is None


def test_flatten_is_off_by_default_and_due_n_minutes_before_the_close() -> None:
    assert settings().flatten_before_close_min is None
    assert flatten_due(at(3, "15:56"), SESSIONS, None) is None
    assert flatten_due(at(3, "15:56"), SESSIONS, 5) == at(3, "16:00")
    assert flatten_due(at(3, "15:54"), SESSIONS, 5) is None


def test_guard_goes_reducing_before_the_close_and_back_only_after_a_clean_reconcile_at_the_open() -> None:
    guard = ScheduleGuard(settings(gateway_restart=None), SESSIONS)
    assert guard.update(at(3, "15:00"), A) == []
    (reduce,) = guard.update(at(3, "15:50"), A)
    assert (reduce.kind, reduce.state) == ("reduce", R)
    assert [a.kind for a in guard.update(at(3, "16:01"), R)] == ["daily_summary"]
    guard.on_recovered(at(3, "20:00"), clean=True)  # a reconnect overnight does not count
    (reconcile,) = guard.update(at(4, "09:30"), R)
    assert reconcile.kind == "reconcile"
    assert guard.update(at(4, "09:31"), R) == []  # waiting for the engine's reconcile
    guard.on_recovered(at(4, "09:31"), clean=False)
    assert guard.update(at(4, "09:32"), R) == []
    guard.on_recovered(at(4, "09:33"), clean=True)
    (restore,) = guard.update(at(4, "09:33"), R)
    assert (restore.kind, restore.state) == ("restore", A)
    assert guard.phase is Phase.NORMAL


def test_guard_restart_window_then_reduce_and_restore_after_reconnect() -> None:
    guard = ScheduleGuard(settings(reduce_before_close_min=None), SESSIONS)
    assert [a.kind for a in guard.update(at(3, "23:35"), A)] == ["reduce"]
    assert [a.kind for a in guard.update(at(4, "00:00"), R)] == ["reconcile"]
    guard.on_recovered(at(4, "00:01"), clean=True)
    assert [a.kind for a in guard.update(at(4, "00:01"), R)] == ["restore"]


def test_guard_when_kill_switch_halts_during_the_window_then_never_restores() -> None:
    guard = ScheduleGuard(settings(gateway_restart=None), SESSIONS)
    guard.update(at(3, "15:50"), A)
    guard.update(at(4, "09:30"), H)
    guard.on_recovered(at(4, "09:31"), clean=True)
    assert guard.update(at(4, "09:31"), H) == []
    assert guard.phase is Phase.NORMAL


def test_guard_when_kill_switch_reset_inside_the_window_then_reduces_again_and_restores_after_it() -> None:
    guard = ScheduleGuard(settings(gateway_restart=None), SESSIONS)
    guard.update(at(3, "15:50"), A)
    assert guard.update(at(3, "15:51"), H) == []
    (reduce,) = guard.update(at(3, "15:52"), A)  # reset to ACTIVE by the operator
    assert (reduce.kind, reduce.state) == ("reduce", R)
    assert guard.update(at(3, "15:53"), A) == []  # REDUCING off by the operator after that: theirs
    guard.update(at(4, "09:30"), R)
    guard.on_recovered(at(4, "09:31"), clean=True)
    assert [a.kind for a in guard.update(at(4, "09:31"), R)] == ["restore"]


def test_guard_when_already_reducing_then_leaves_the_state_alone() -> None:
    guard = ScheduleGuard(settings(gateway_restart=None), SESSIONS)
    assert guard.update(at(3, "15:50"), R) == []
    guard.update(at(4, "09:30"), R)
    guard.on_recovered(at(4, "09:31"), clean=True)
    assert guard.update(at(4, "09:31"), R) == []


def test_guard_flattens_once_per_close_when_configured() -> None:
    guard = ScheduleGuard(settings(gateway_restart=None, flatten_before_close_min=5), SESSIONS)
    kinds = [a.kind for t in ("15:55", "15:56", "15:57") for a in guard.update(at(3, t), R)]
    assert kinds.count("flatten") == 1


@pytest.mark.parametrize("sessions", [
    # A break in the day (a lunch break): two closes.
    (Session(at(3, "09:30"), at(3, "12:00")), Session(at(3, "13:00"), at(3, "16:00")), session(4)),
    # An instrument whose liquid hours were unreadable trades on its trading hours, to 20:00, beside one to 16:00.
    (session(3), Session(at(3, "04:00"), at(3, "20:00")), session(4)),
])
def test_guard_daily_summary_once_a_day_at_its_last_close(sessions: tuple[Session, ...]) -> None:
    """Each close of a day asked for a summary of that day: two of the same day, the first before its trading
    was over."""
    guard = ScheduleGuard(settings(gateway_restart=None, reduce_before_close_min=None), sessions)
    last = max(s.end for s in sessions if s.end.day == 3)
    summaries = [a.when for when in ((3, "11:00"), (3, "12:01"), (3, "16:01"), (3, "20:01"), (4, "16:01"))
                 for a in guard.update(at(*when), A) if a.kind == "daily_summary"]
    assert summaries == [last, at(4, "16:00")]
