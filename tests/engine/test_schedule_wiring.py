"""The schedule drives the running engine: REDUCING before the gateway restart, ACTIVE again only
after the window is over and a reconciliation came back clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tui_trader.config import Settings
from tui_trader.domain import AlertLevel, Mode, TradingState
from tui_trader.domain import OrderStatus as S
from tui_trader.domain.events import AlertRaised, OperatorAction, TradingStateChanged
from tui_trader.domain.market import Session
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig, schedule_from_settings
from tui_trader.engine.engine import Engine
from tui_trader.engine.operations import ScheduleRunner, attach_schedule
from tui_trader.ops.notify.notice import Notice
from tui_trader.ops.schedule import Phase, ScheduleGuard
from tui_trader.risk import TriggerAction
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

from .helpers import (
    CLIENT_ID,
    alerts_said,
    bracket_buy,
    buy,
    eventually,
    limits_for_tests,
    link_down,
    make_config,
    make_engine,
    running,
    sell,
    status,
)

START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York


@pytest.fixture
async def scheduled(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Engine, ManualClock,
                                                                                          ScheduleRunner]]:
    """The engine on a manual clock with a 10:30 restart window; ``request.param``: its risk limits' changes."""
    clock = ManualClock(START)
    limits = limits_for_tests(**getattr(request, "param", {}))
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, market_data_stale_s=3600, limits=limits), clock=clock.now)
        settings = Settings(mode=Mode.PAPER, schedule={"gateway_restart": "10:30", "restart_duration_min": 5,
                                      "reduce_before_restart_min": 10, "reduce_before_close_min": None})
        runner = attach_schedule(engine, settings)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
        yield engine, clock, runner
        await engine.stop()


async def test_schedule_when_restart_window_nears_then_reducing_and_back_active_after_clean_reconcile(
        scheduled: tuple[Engine, ManualClock, ScheduleRunner]) -> None:
    engine, clock, runner = scheduled
    events = engine.subscribe("test")
    engine.tick()
    assert engine.trading_state is TradingState.ACTIVE

    clock.advance(21 * 60)  # 10:21, inside "10 minutes before the 10:30 restart"
    engine.tick()
    assert engine.trading_state is TradingState.REDUCING
    changed = [e for e in events.drain() if isinstance(e, TradingStateChanged)]
    assert changed[-1].by == "schedule"

    clock.advance(15 * 60)  # 10:36: the 5-minute restart window is over
    engine.tick()
    await eventually(lambda: (engine.tick(), engine.trading_state is TradingState.ACTIVE)[1], timeout=10,
                     what="ACTIVE again after a clean reconciliation")


async def test_schedule_when_operator_halts_during_window_then_schedule_never_restores(
        scheduled: tuple[Engine, ManualClock, ScheduleRunner]) -> None:
    engine, clock, runner = scheduled
    clock.advance(21 * 60)
    engine.tick()
    assert engine.trading_state is TradingState.REDUCING
    engine.kill("operator during the restart window")
    clock.advance(15 * 60)
    for _ in range(20):
        engine.tick()
    await eventually(lambda: not runner._reconciling, what="the schedule's reconcile to finish")
    engine.tick()
    assert engine.trading_state is TradingState.HALTED


async def test_schedule_when_operator_asks_reducing_during_window_then_left_reducing_after_it_and_said(
        scheduled: tuple[Engine, ManualClock, ScheduleRunner]) -> None:
    engine, clock, runner = scheduled
    events = engine.subscribe("test", lossless=True)
    clock.advance(21 * 60)
    engine.tick()
    assert engine.trading_state is TradingState.REDUCING

    engine.reduce_only(True, "operator: winding down for the day")  # already REDUCING: the operator's now
    clock.advance(15 * 60)  # the window is over
    await eventually(lambda: (engine.tick(), runner.guard.phase is Phase.NORMAL)[1], timeout=10,
                     what="the schedule done with the window")

    assert engine.trading_state is TradingState.REDUCING
    kept = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "schedule_state_kept"]
    assert [(a.level, "operator" in a.text) for a in kept] == [(AlertLevel.INFO, True)]


@pytest.mark.parametrize("scheduled", [{"position_mismatch_action": TriggerAction.REDUCING}], indirect=True)
async def test_schedule_when_risk_monitor_reduces_during_window_then_left_reducing_after_it(
        scheduled: tuple[Engine, ManualClock, ScheduleRunner]) -> None:
    """A monitor's REDUCING that fires inside the window is the monitor's: the window's end does not lift it."""
    engine, clock, runner = scheduled
    clock.advance(21 * 60)
    engine.tick()
    assert engine.trading_state is TradingState.REDUCING

    engine.on_position_mismatch({"AAPL": (0.0, 10.0)})
    clock.advance(15 * 60)
    await eventually(lambda: (engine.tick(), runner.guard.phase is Phase.NORMAL)[1], timeout=10,
                     what="the schedule done with the window")

    assert engine.trading_state is TradingState.REDUCING
    change = engine.risk.last_change
    assert change is not None
    assert change.by == "risk:position_mismatch"


NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("new_york", "why"), [
    (datetime(2024, 3, 5, 17, 0, tzinfo=NEW_YORK), "session close at 16:00"),
    (datetime(2024, 3, 5, 23, 40, tzinfo=NEW_YORK), "IB Gateway restart at 23:45"),
])
@pytest.mark.parametrize("mode", [Mode.SIM, Mode.PAPER])
async def test_schedule_default_settings_after_close_and_before_restart_then_only_ib_modes_reduce(
        tmp_path: Path, new_york: datetime, why: str, mode: Mode) -> None:
    """IB's exchange close and nightly restart hold for paper and live; the embedded simulator trades
    around the clock and never restarts, so --sim stays ACTIVE at any hour."""
    clock = ManualClock(new_york.astimezone(UTC))
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, market_data_stale_s=3600), clock=clock.now)
        attach_schedule(engine, Settings(mode=mode))
        events = engine.subscribe("test")
        await engine.start()
        try:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
            engine.tick()
            changes = [e for e in events.drain() if isinstance(e, TradingStateChanged)]
            state = engine.trading_state
        finally:
            await engine.stop()  # also when the wait fails: no engine or journal thread outlives the test
    if mode is Mode.SIM:
        assert state is TradingState.ACTIVE
        assert changes == []
    else:
        assert state is TradingState.REDUCING
        assert [(c.by, why in c.reason) for c in changes] == [("schedule", True)]


def first_session_day(runner: ScheduleRunner) -> date:
    """The exchange date of the earliest session the schedule works from."""
    return min(s.start for s in runner.guard.sessions).astimezone(NEW_YORK).date()


async def test_sessions_when_engine_reconnects_then_schedule_uses_the_fresh_contract_details(
        tmp_path: Path) -> None:
    gateway_clock, engine_clock = ManualClock(START), ManualClock(START)
    async with SimGateway(port=0, clock=gateway_clock, seed=7, always_open=True) as gw:
        # The engine's own clock stays put, so no new trading day refreshes anything: only the reconnect can.
        engine = make_engine(gw, make_config(tmp_path), clock=engine_clock.now)
        runner = attach_schedule(engine, Settings())
        await engine.start()
        engine.tick()
        assert first_session_day(runner) == date(2024, 3, 5)

        gateway_clock.advance(7 * 24 * 3600)  # a week on, the gateway's details list next week's sessions
        gw.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: engine.reconnects >= 1 and engine.is_connected and not engine.blocks,
                         what="reconnected and reconciled")
        engine.tick()
        assert first_session_day(runner) == date(2024, 3, 12)
        assert min(s.start for s in engine.market.instruments["AAPL"].liquid_sessions).date() == date(2024, 3, 12)
        await engine.stop()


async def test_sessions_when_a_new_trading_day_starts_while_connected_then_contract_details_reread(
        scheduled: tuple[Engine, ManualClock, ScheduleRunner]) -> None:
    engine, clock, runner = scheduled
    engine.tick()
    assert first_session_day(runner) == date(2024, 3, 5)
    reconnects = engine.reconnects

    clock.advance(24 * 3600)  # Wednesday 10:00 New York, same connection
    await eventually(lambda: (engine.tick(), first_session_day(runner) == date(2024, 3, 6))[1],
                     what="sessions from Wednesday's contract details")
    assert engine.reconnects == reconnects
    assert engine.instruments_day == date(2024, 3, 6)


@asynccontextmanager
async def paper_schedule(tmp_path: Path, clock: ManualClock) -> AsyncIterator[tuple[Engine, ScheduleRunner]]:
    """A started paper engine on a simulator at ``clock``, driven by the default schedule."""
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, market_data_stale_s=24 * 3600), clock=clock.now)
        runner = attach_schedule(engine, Settings(mode=Mode.PAPER))
        await engine.start()
        try:
            yield engine, runner
        finally:
            await engine.stop()


async def settle(engine: Engine, runner: ScheduleRunner, ticks: int = 5) -> None:
    """Tick until the schedule's own reconciliation (if any) is done and its outcome acted on."""
    for _ in range(ticks):
        engine.tick()
        await eventually(lambda: not runner._reconciling, what="the schedule's reconcile to finish")
    engine.tick()


async def test_schedule_when_engine_runs_past_midnight_after_the_close_then_still_reducing_until_the_open(
        tmp_path: Path) -> None:
    """After midnight the new day's contract details list sessions from today's open on: yesterday's
    close is gone from them. The window from the close to the open must still hold until 09:30."""
    clock = ManualClock(datetime(2024, 3, 5, 15, 55, tzinfo=NEW_YORK).astimezone(UTC))
    async with paper_schedule(tmp_path, clock) as (engine, runner):
        await settle(engine, runner)
        assert engine.trading_state is TradingState.REDUCING

        clock.advance(8 * 3600 + 25 * 60)  # Wednesday 00:20, after the gateway's restart window
        await eventually(lambda: (engine.tick(), first_session_day(runner) == date(2024, 3, 6))[1],
                         what="sessions from Wednesday's contract details")
        await settle(engine, runner)
        at_night = engine.trading_state

        clock.advance(9 * 3600 + 15 * 60)  # Wednesday 09:35, the market open
        await eventually(lambda: (engine.tick(), engine.trading_state is TradingState.ACTIVE)[1], timeout=10,
                         what="ACTIVE again after the open")
    assert at_night is TradingState.REDUCING


@pytest.mark.parametrize("new_york", [
    datetime(2024, 3, 6, 8, 0, tzinfo=NEW_YORK),  # Wednesday before the open
    datetime(2024, 3, 9, 12, 0, tzinfo=NEW_YORK),  # Saturday
])
async def test_schedule_when_console_starts_while_the_market_is_closed_then_reducing(
        tmp_path: Path, new_york: datetime) -> None:
    """Contract details read before the open (or on a weekend) list no earlier close; closed is closed."""
    clock = ManualClock(new_york.astimezone(UTC))
    async with paper_schedule(tmp_path, clock) as (engine, runner):
        await settle(engine, runner)
        state = engine.trading_state
    assert state is TradingState.REDUCING


async def test_schedule_when_kill_switch_is_reset_inside_the_window_then_reducing_again_and_active_after_it(
        scheduled: tuple[Engine, ManualClock, ScheduleRunner]) -> None:
    """A reset releases the kill to ACTIVE; inside the window that would trade through the restart."""
    engine, clock, runner = scheduled
    clock.advance(21 * 60)  # 10:21, inside the window
    engine.tick()
    engine.kill("operator during the restart window")
    engine.tick()
    engine.reset_kill("checked the account", by="op")
    engine.tick()
    assert engine.trading_state is TradingState.REDUCING
    change = engine.risk.last_change
    assert change is not None
    assert change.by == "schedule"

    clock.advance(15 * 60)  # the window is over
    await eventually(lambda: (engine.tick(), engine.trading_state is TradingState.ACTIVE)[1], timeout=10,
                     what="ACTIVE again after a clean reconciliation")


async def test_schedule_when_engine_starts_halted_in_the_window_and_kill_is_reset_then_reducing(
        tmp_path: Path) -> None:
    """A kill latched yesterday: the engine starts HALTED after the close; its reset must not make it ACTIVE."""
    clock = ManualClock(datetime(2024, 3, 5, 18, 0, tzinfo=NEW_YORK).astimezone(UTC))
    async with paper_schedule(tmp_path, clock) as (engine, runner):
        engine.kill("yesterday's kill")
        await settle(engine, runner)
        engine.reset_kill("checked the account", by="op")
        await settle(engine, runner)
        state = engine.trading_state
    assert state is TradingState.REDUCING


@pytest.fixture
async def flattening(tmp_path: Path) -> AsyncIterator[tuple[Engine, ManualClock, SimGateway]]:
    """The engine at 15:50 New York with ``flatten_before_close_min = 5``, holding 10 AAPL with its stop."""
    clock = ManualClock(datetime(2024, 3, 5, 15, 50, tzinfo=NEW_YORK).astimezone(UTC))
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, market_data_stale_s=24 * 3600), clock=clock.now)
        attach_schedule(engine, Settings(mode=Mode.PAPER, schedule={"flatten_before_close_min": 5,
                                                                    "reduce_before_close_min": None}))
        await engine.start()
        try:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
            engine.tick()
            await bracket_buy(gw, engine, qty=10)
            yield engine, clock, gw
        finally:
            await engine.stop()


def flatten_running(engine: Engine) -> bool:
    """The schedule's flatten is still under way."""
    return any(t.get_name() == "schedule-flatten" for t in engine._tasks)


def schedule_alerts(events: Subscription) -> list[tuple[AlertLevel, str]]:
    """The schedule's alerts among ``events``."""
    return [(a.level, a.kind) for a in alerts_said(events, source="schedule")]


async def test_flatten_before_close_when_its_order_is_rejected_then_tried_again_and_flat_by_the_close(
        flattening: tuple[Engine, ManualClock, SimGateway]) -> None:
    """The flatten fired once per close: a rejected closing order left the position held overnight."""
    engine, clock, gw = flattening
    events = engine.subscribe("test", lossless=True)
    gw.control.reject_next()
    clock.advance(5 * 60)  # 15:55: the flatten is due
    engine.tick()
    await eventually(lambda: not engine.exits_pending("AAPL") and any(
        o.ticket.strategy == "flatten" for o in engine.orders.orders.values()), what="the flatten rejected")
    assert engine.portfolio.open_positions()["AAPL"].quantity == 10

    engine.tick()  # the same minute: no second flatten yet
    assert [o.status for o in engine.orders.orders.values() if o.ticket.strategy == "flatten"] == [S.REJECTED]

    clock.advance(30)
    await eventually(lambda: (engine.tick(), not engine.portfolio.open_positions())[1],
                     what="flat again before the close")
    assert gw.positions().get("AAPL", 0) == 0
    assert schedule_alerts(events) == [(AlertLevel.WARNING, "schedule_not_flat")]

    clock.advance(5 * 60)  # the close: flat, nothing more to say
    engine.tick()
    assert schedule_alerts(events) == []


async def test_flatten_before_close_when_the_broker_link_is_down_then_tried_again_once_back(
        flattening: tuple[Engine, ManualClock, SimGateway]) -> None:
    engine, clock, gw = flattening
    events = engine.subscribe("test", lossless=True)
    await link_down(engine, gw)
    clock.advance(5 * 60)  # 15:55: the flatten is due, nothing can be sent
    engine.tick()
    await eventually(lambda: not flatten_running(engine), what="the flatten refused")
    assert engine.portfolio.open_positions()["AAPL"].quantity == 10

    clock.advance(60)  # 15:56: the gateway takes connections again
    gw.control.refuse_connections(0)
    await eventually(lambda: engine.is_connected and not engine.blocks, what="reconnected and reconciled")
    clock.advance(30)  # past the 30 s between tries, however the engine's own ticks fell
    await eventually(lambda: (engine.tick(), not engine.portfolio.open_positions())[1],
                     what="flat again before the close")
    assert gw.positions().get("AAPL", 0) == 0
    said = schedule_alerts(events)
    assert (AlertLevel.WARNING, "schedule_not_flat") in said
    assert AlertLevel.ERROR not in {level for level, _ in said}


async def test_flatten_before_close_when_still_open_at_the_close_then_error(
        flattening: tuple[Engine, ManualClock, SimGateway]) -> None:
    engine, clock, gw = flattening
    events = engine.subscribe("test", lossless=True)
    await link_down(engine, gw)
    for seconds in range(5 * 60, 10 * 60 + 1, 30):  # 15:55 to 16:00, a tick every 30 seconds
        clock.advance(30 if seconds > 5 * 60 else seconds)
        engine.tick()
        await eventually(lambda: not flatten_running(engine), what="the flatten refused")
    assert engine.portfolio.open_positions()["AAPL"].quantity == 10
    said = schedule_alerts(events)
    assert said[-1] == (AlertLevel.ERROR, "schedule_not_flat_at_close")
    # The first flatten was refused (said once); no retry into the dead link, each saying the same again.
    assert said.count((AlertLevel.WARNING, "schedule_flatten_not_sent")) == 1
    assert said.count((AlertLevel.WARNING, "schedule_not_flat")) == 0


async def test_flatten_before_close_when_the_kill_switch_is_engaged_then_not_sent_said_and_sent_after_a_reset(
        flattening: tuple[Engine, ManualClock, SimGateway]) -> None:
    # The schedule's flatten passed the kill switch as the operator's own flatten does: an automatic order
    # reached the market while trading was HALTED.
    engine, clock, gw = flattening
    engine.kill("operator stopped trading")
    await eventually(lambda: not engine.exits_pending("AAPL") and engine.risk.kill_state.engaged,
                     what="the kill's cancels done")
    events = engine.subscribe("test", lossless=True)
    clock.advance(5 * 60)  # 15:55: the flatten is due
    engine.tick()
    clock.advance(60)
    engine.tick()

    assert not flatten_running(engine)
    assert not [o for o in engine.orders.orders.values() if o.ticket.strategy == "flatten"]
    assert gw.positions()["AAPL"] == 10
    alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.source == "schedule"]
    assert [(a.level, a.kind) for a in alerts] == [(AlertLevel.WARNING, "schedule_flatten_halted")]
    assert alerts[0].text == ("flatten before the close not sent: the kill switch is engaged (operator stopped "
                              "trading); AAPL 10 held past the close unless flattened by hand")

    engine.reset_kill("checked the account", by="op")  # inside the window: the schedule's flatten goes out
    await eventually(lambda: (engine.tick(), not engine.portfolio.open_positions())[1], what="flat after the reset")
    assert gw.positions().get("AAPL", 0) == 0
    await eventually(lambda: not flatten_running(engine), what="the flatten recorded (once the broker answered it)")
    actions = [e for e in events.drain() if isinstance(e, OperatorAction) and e.action == "flatten"]
    assert [a.who for a in actions] == ["schedule"]


async def summaries_done(engine: Engine) -> None:
    """Wait for the daily summaries the schedule spawned (journaled and handed to the notifier, or not)."""
    await asyncio.gather(*(t for t in engine._tasks if t.get_name() == "daily-summary"))


async def run_over(gw: SimGateway, clock: ManualClock, config: EngineConfig, minutes: list[int],
                   then: Callable[[Engine], Awaitable[None]] | None = None) -> list[Notice]:
    """An engine with the schedule ticking at each of ``minutes`` from now on (after ``then``, once started);
    returns the notices sent."""
    sent: list[Notice] = []
    engine = make_engine(gw, config, clock=clock.now)
    runner = ScheduleRunner(engine, ScheduleGuard(schedule_from_settings(Settings(mode=Mode.PAPER))), sent.append)
    engine.add_tick_hook(runner.tick)
    await engine.start()
    try:
        if then is not None:
            await then(engine)
        for minute in minutes:
            clock.advance(minute * 60)
            await settle(engine, runner)
            await summaries_done(engine)
    finally:
        await engine.stop()
    return sent


async def test_daily_summary_when_the_engine_restarts_soon_after_the_close_then_not_sent_again(
        tmp_path: Path) -> None:
    """The summary went out at the close; the console restarted ten minutes later on the same journal, and its
    schedule (a new one, no close seen yet) took the 16:00 close as just passed: a second summary of the day."""
    clock = ManualClock(datetime(2024, 3, 5, 15, 58, tzinfo=NEW_YORK).astimezone(UTC))
    config = make_config(tmp_path, market_data_stale_s=24 * 3600)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        first = await run_over(gw, clock, config, [0, 3])  # 15:58, then 16:01: the session closed
        second = await run_over(gw, clock, config, [9])  # restarted at 16:10
    assert [n.title for n in first] == ["daily summary 2024-03-05"]
    assert [n.title for n in second] == []
    journal = await Journal.open(tmp_path / "journal.sqlite")
    try:
        assert await journal.has_daily_summary("2024-03-05")
    finally:
        await journal.close()


async def test_daily_summary_when_sessions_read_again_end_later_that_day_then_one_summary(tmp_path: Path) -> None:
    """Contract details read again just after the close with a later end that day (a session still trading): a
    second close of the day, its summary asked before the first was journaled; neither found the other."""
    clock = ManualClock(datetime(2024, 3, 5, 15, 58, tzinfo=NEW_YORK).astimezone(UTC))
    sent: list[Notice] = []
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, market_data_stale_s=24 * 3600), clock=clock.now)
        runner = ScheduleRunner(engine, ScheduleGuard(schedule_from_settings(Settings(mode=Mode.PAPER))), sent.append)
        engine.add_tick_hook(runner.tick)
        await engine.start()
        try:
            await settle(engine, runner)
            clock.advance(3 * 60)  # 16:01
            runner.tick(engine.now())  # the 16:00 close: its summary asked
            later = datetime(2024, 3, 5, 16, 0, 30, tzinfo=NEW_YORK)
            runner.guard.set_sessions((*runner.guard.sessions, Session(later - timedelta(hours=6), later)))
            runner.tick(engine.now())  # read again: a close at 16:00:30, the first summary not yet journaled
            await summaries_done(engine)
        finally:
            await engine.stop()
    assert [n.title for n in sent] == ["daily summary 2024-03-05"]


async def trade(engine: Engine, *tickets_of: str) -> None:
    """Market orders of 10 AAPL, each filled before the next (``"buy"``, ``"sell"``)."""
    await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
    for side in tickets_of:
        order = await engine.submit(buy(10) if side == "buy" else sell(10))
        await eventually(lambda ref=order.order_ref: status(engine, ref) is S.FILLED, what=f"the {side} filled")


async def round_trip(engine: Engine) -> None:
    """One trade: bought and sold again."""
    await trade(engine, "buy", "sell")


async def bought(engine: Engine) -> None:
    """A position held: bought, not sold."""
    await trade(engine, "buy")


async def nothing(engine: Engine) -> None:
    """The engine runs and trades nothing."""
    await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")


def to(clock: ManualClock, new_york: datetime) -> None:
    """Move ``clock`` on to ``new_york``."""
    clock.advance((new_york - clock.now()).total_seconds())


TUESDAY = datetime(2024, 3, 5, 10, 0, tzinfo=NEW_YORK)


@pytest.mark.parametrize("restart", [
    datetime(2024, 3, 5, 19, 30, tzinfo=NEW_YORK),  # the same evening (already Wednesday in UTC)
    datetime(2024, 3, 6, 9, 0, tzinfo=NEW_YORK),  # the next morning, before the close
], ids=["same-evening", "next-morning"])
async def test_daily_summary_when_the_engine_was_stopped_before_the_close_then_sent_late_once_on_a_later_start(
        tmp_path: Path, restart: datetime) -> None:
    """The summary is asked for within the hour after the close: an engine stopped before it and started again
    later (a VPS rebooted overnight) never sent that day's summary."""
    clock = ManualClock(TUESDAY.astimezone(UTC))
    config = make_config(tmp_path, market_data_stale_s=24 * 3600)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        stopped = await run_over(gw, clock, config, [0], then=round_trip)  # traded Tuesday, stopped at 10:00
        to(clock, restart)
        late = await run_over(gw, clock, config, [0, 1])
        again = await run_over(gw, clock, config, [10])  # restarted once more: the journal has it
    assert stopped == []
    assert [n.title for n in late] == [f"daily summary 2024-03-05 (sent late, {restart:%a %Y-%m-%d %H:%M %Z})"]
    assert late[0].text.startswith("trades 1 (win rate ")  # Tuesday's figures
    assert ", fills 2\n" in late[0].text
    assert again == []


async def test_daily_summary_when_sent_at_the_close_then_a_start_the_next_morning_sends_nothing(
        tmp_path: Path) -> None:
    clock = ManualClock(datetime(2024, 3, 5, 15, 50, tzinfo=NEW_YORK).astimezone(UTC))
    config = make_config(tmp_path, market_data_stale_s=24 * 3600)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        tuesday = await run_over(gw, clock, config, [0, 11], then=round_trip)  # 15:50, then 16:01: closed
        to(clock, datetime(2024, 3, 6, 9, 0, tzinfo=NEW_YORK))
        wednesday = await run_over(gw, clock, config, [0])
    assert [n.title for n in tuesday] == ["daily summary 2024-03-05"]
    assert wednesday == []


async def test_daily_summary_when_the_engine_ran_without_trading_or_positions_then_no_late_summary(
        tmp_path: Path) -> None:
    clock = ManualClock(TUESDAY.astimezone(UTC))
    config = make_config(tmp_path, market_data_stale_s=24 * 3600)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        await run_over(gw, clock, config, [0], then=nothing)  # ran Tuesday morning, traded nothing
        to(clock, datetime(2024, 3, 6, 9, 0, tzinfo=NEW_YORK))
        wednesday = await run_over(gw, clock, config, [0])
    assert wednesday == []


async def test_daily_summary_when_days_were_missed_then_only_the_latest_sent_late_a_day_of_held_positions_too(
        tmp_path: Path) -> None:
    """Bought Monday, held Tuesday (the engine ran, traded nothing), neither summary sent (an engine without a
    schedule: no summaries at all): Wednesday's start sends Tuesday's late, not Monday's as well."""
    clock = ManualClock(datetime(2024, 3, 4, 10, 0, tzinfo=NEW_YORK).astimezone(UTC))
    config = make_config(tmp_path, market_data_stale_s=24 * 3600)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        async with running(gw, config, clock=clock.now) as (engine, _):
            await bought(engine)
        to(clock, TUESDAY)
        async with running(gw, config, clock=clock.now) as (engine, _):
            await nothing(engine)
        to(clock, datetime(2024, 3, 6, 9, 0, tzinfo=NEW_YORK))
        wednesday = await run_over(gw, clock, config, [0])
    assert [n.title.split(" (")[0] for n in wednesday] == ["daily summary 2024-03-05"]
    assert wednesday[0].text.startswith("trades 0 (win rate n/a), fills 0\n")


async def test_daily_summary_when_restarted_after_a_close_with_positions_held_then_the_last_day_run_is_sent(
        tmp_path: Path) -> None:
    """Bought Monday and stopped before the close; off all Tuesday, started Tuesday evening holding the position:
    the start's own journal lines must not make Tuesday a day the engine held positions on."""
    clock = ManualClock(datetime(2024, 3, 4, 10, 0, tzinfo=NEW_YORK).astimezone(UTC))
    config = make_config(tmp_path, market_data_stale_s=24 * 3600)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        async with running(gw, config, clock=clock.now) as (engine, _):
            await bought(engine)
        to(clock, datetime(2024, 3, 5, 19, 30, tzinfo=NEW_YORK))
        tuesday = await run_over(gw, clock, config, [0, 1])
    assert [n.title.split(" (")[0] for n in tuesday] == ["daily summary 2024-03-04"]
    assert tuesday[0].text.startswith("trades 0 (win rate n/a), fills 1\n")
