"""The automatic triggers as the engine performs them, against the simulator over loopback and a real journal.

Each trigger moves to REDUCING or HALTED with an alert and a journal record naming it; these tests
follow a trigger past the operator's reset and past a restart.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tui_trader.domain import Alert, AlertLevel, OrderStatus, OrderType, TradingState
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.risk.limits import TriggerAction
from tui_trader.sim import ManualClock, SimGateway

from .helpers import (
    alerts_said,
    allow_journal_writes,
    buy,
    eventually,
    journal_fails,
    limits_for_tests,
    long_at_the_broker,
    make_config,
    make_engine,
    refuse_journal_writes,
    running,
    status,
)


@asynccontextmanager
async def _halted_by_the_journal(sim: SimGateway, tmp_path: Path) -> AsyncIterator[tuple[Engine, Subscription, Path]]:
    """A running engine whose journal (at the path yielded) refuses writes, until :func:`allow_journal_writes` (and
    on the way out), and whose failure has halted trading."""
    config = make_config(tmp_path)
    path = config.journal_path
    assert path is not None
    async with running(sim, config) as (engine, events):
        refuse_journal_writes(path)
        try:
            await journal_fails(engine)
            await eventually(lambda: engine.risk.kill_state.engaged, what="first failure halts")
            yield engine, events, path
        finally:
            allow_journal_writes(path)


@asynccontextmanager
async def _journal_refusing_writes(sim: SimGateway, tmp_path: Path, action: TriggerAction | None = None, *,
                                   killed: bool = False) -> AsyncIterator[tuple[Engine, Subscription]]:
    """A running engine (its journal-failure action ``action``, the default's when None; the kill switch engaged by
    the operator first when ``killed``) with its first quotes and its events drained, whose journal refuses writes from
    now on (allowed again on the way out)."""
    limits = {} if action is None else {"limits": limits_for_tests(journal_failure_action=action)}
    config = make_config(tmp_path, **limits)
    assert config.journal_path is not None
    async with running(sim, config) as (engine, events):
        if killed:
            engine.kill("going for lunch")
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        events.drain()
        refuse_journal_writes(config.journal_path)
        try:
            yield engine, events
        finally:
            allow_journal_writes(config.journal_path)


async def test_journal_failure_after_the_operator_reset_a_journal_halt_then_it_halts_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # Once the journal-failure trigger had fired, it never fired again in that run: after the operator
    # freed the disk and reset the kill switch, a second failure left trading ACTIVE with nothing journaled
    # and no alert (DESIGN: a failed write halts trading).
    async with _halted_by_the_journal(sim, tmp_path) as (engine, events, path):
        assert engine.journal is not None
        allow_journal_writes(path)
        await engine.journal.flush()
        engine.reset_kill("disk space freed")
        await engine.journal.flush()
        assert engine.trading_state is TradingState.ACTIVE
        events.drain()

        # Act: the disk fills again.
        refuse_journal_writes(path)
        await journal_fails(engine)

        # Assert: halted again by the same trigger, and said by the kill switch's critical alert.
        assert engine.risk.kill_state.engaged
        assert engine.risk.kill_state.trigger is KillTrigger.JOURNAL_FAILURE
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        assert any(a.kind == "kill" and a.trip == "journal_failure" and a.level is AlertLevel.CRITICAL
                   and "journal write failed: disk full" in a.text for a in said)


@pytest.mark.parametrize("engaged_before", [False, True], ids=["halts", "halted-already"])
async def test_journal_failure_that_halts_then_one_critical_alert_says_it(
        sim: SimGateway, tmp_path: Path, engaged_before: bool) -> None:
    # One failure was two critical alerts, two messages on the trader's phone: the journal's "journal write failed:
    # disk full" and the kill switch's engagement by it. With the kill engaged already, the trigger's own says it.
    async with _journal_refusing_writes(sim, tmp_path, killed=engaged_before) as (engine, events):
        # Act
        await journal_fails(engine)
        await eventually(lambda: engine.risk.kill_state.engaged, what="halted")
        engine.tick()
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]

    # Assert
    (alert,) = [a for a in said if "journal write failed" in a.text]
    assert [a for a in said if a.level is AlertLevel.CRITICAL] == [alert]
    assert "journal write failed: disk full -> HALTED" in alert.text
    if engaged_before:
        assert (alert.source, alert.kind) == ("risk", "journal_failure")
        assert "(the kill switch was engaged already, by operator)" in alert.text
    else:
        assert (alert.source, alert.kind, alert.trip) == ("kill_switch", "kill", "journal_failure")


@pytest.mark.parametrize(("action", "state"), [(TriggerAction.REDUCING, TradingState.REDUCING),
                                               (TriggerAction.ALERT, TradingState.ACTIVE)])
async def test_journal_failure_that_does_not_halt_then_one_critical_alert_naming_the_action(
        sim: SimGateway, tmp_path: Path, action: TriggerAction, state: TradingState) -> None:
    # It was two alerts: the journal's critical one, and the trigger's response beside it (an ERROR "…: reducing
    # only", a WARNING).
    async with _journal_refusing_writes(sim, tmp_path, action) as (engine, events):
        # Act
        await journal_fails(engine)
        engine.tick()
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind != "test"]

        # Assert: one alert, of the trigger's source and kind (the console's row of the REDUCING goes with it).
        assert [(a.level, a.source, a.kind, a.text) for a in said] == [
            (AlertLevel.CRITICAL, "risk", "journal_failure", f"journal write failed: disk full -> {action.value}")]
        assert engine.trading_state is state
        assert not engine.risk.kill_state.engaged


async def test_journal_failure_reducing_while_halted_then_one_critical_alert_says_trading_stays_halted(
        sim: SimGateway, tmp_path: Path) -> None:
    # The journal's alert said "journal write failed: disk full -> REDUCING", and trading stayed HALTED.
    async with _journal_refusing_writes(sim, tmp_path, TriggerAction.REDUCING, killed=True) as (engine, events):
        # Act
        await journal_fails(engine)
        said = alerts_said(events, source="risk")

        # Assert
        assert [(a.level, a.kind, a.text) for a in said] == [
            (AlertLevel.CRITICAL, "journal_failure", "journal write failed: disk full -> REDUCING: trading stays "
             "HALTED (by operator)")]
        assert engine.trading_state is TradingState.HALTED


async def _mismatch_said(sim: SimGateway, engine: Engine, events: Subscription) -> list[Alert]:
    """5 AAPL bought in TWS under a book that holds none, until the engine has said the mismatch: the alerts said
    (the mismatch's all come in the one call that concludes it)."""
    await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
    events.drain()
    await long_at_the_broker(sim, 5)
    said: list[Alert] = []
    await eventually(lambda: said.extend(alerts_said(events)) or any("AAPL: ours 0, broker 5" in a.text for a in said),
                     timeout=20, what="the mismatch said")
    return said + alerts_said(events)


@pytest.mark.parametrize("engaged_before", [False, True], ids=["halts", "halted-already"])
async def test_position_mismatch_that_halts_then_one_critical_alert_names_each_symbols_quantities(
        sim: SimGateway, tmp_path: Path, engaged_before: bool) -> None:
    # One mismatch was two alerts, two messages on the trader's phone: the reconciliation's ERROR "position mismatch:
    # AAPL: ours 0, broker 5" and the kill switch's engagement by it. With the kill engaged already, the trigger's
    # own says it.
    async with running(sim, make_config(tmp_path)) as (engine, events):
        if engaged_before:
            engine.kill("going for lunch")

        # Act
        said = await _mismatch_said(sim, engine, events)

        # Assert
        (alert,) = [a for a in said if "AAPL: ours 0, broker 5" in a.text]
        assert [a for a in said if a.level.rank >= AlertLevel.ERROR.rank] == [alert]
        assert alert.level is AlertLevel.CRITICAL
        assert "position mismatch with the broker: AAPL: ours 0, broker 5" in alert.text
        if engaged_before:
            assert (alert.source, alert.kind) == ("risk", "position_mismatch")
            assert "(the kill switch was engaged already, by operator)" in alert.text
        else:
            assert (alert.source, alert.kind, alert.trip) == ("kill_switch", "kill", "position_mismatch")
            assert engine.risk.kill_state.trigger is KillTrigger.POSITION_MISMATCH


@pytest.mark.parametrize(("action", "said_as"), [
    (TriggerAction.REDUCING, ("risk", "position mismatch with the broker: AAPL: ours 0, broker 5: reducing only")),
    (TriggerAction.ALERT, ("reconcile", "position mismatch: AAPL: ours 0, broker 5"))], ids=["reducing", "alert"])
async def test_position_mismatch_that_does_not_halt_then_one_error_names_each_symbols_quantities(
        sim: SimGateway, tmp_path: Path, action: TriggerAction, said_as: tuple[str, str]) -> None:
    # A REDUCING was two ERRORs: the reconciliation's and the trigger's "…: reducing only" (whose source and kind the
    # console's row of the REDUCING goes with).
    config = make_config(tmp_path, limits=limits_for_tests(position_mismatch_action=action))
    async with running(sim, config) as (engine, events):
        # Act
        said = await _mismatch_said(sim, engine, events)

        # Assert
        assert [(a.level, a.source, a.kind, a.text) for a in said if a.level.rank >= AlertLevel.WARNING.rank] == [
            (AlertLevel.ERROR, said_as[0], "position_mismatch", said_as[1])]
        assert not engine.risk.kill_state.engaged


async def test_position_mismatch_reducing_while_halted_then_it_says_trading_stays_halted_and_by_whom(
        sim: SimGateway, tmp_path: Path) -> None:
    # A REDUCING trigger firing while HALTED said "…: reducing only", and trading stayed HALTED.
    config = make_config(tmp_path, limits=limits_for_tests(position_mismatch_action=TriggerAction.REDUCING))
    async with running(sim, config) as (engine, events):
        engine.kill("going for lunch")

        # Act
        said = await _mismatch_said(sim, engine, events)

        # Assert
        assert [(a.level, a.source, a.kind, a.text) for a in said if a.level.rank >= AlertLevel.ERROR.rank] == [
            (AlertLevel.ERROR, "risk", "position_mismatch", "position mismatch with the broker: AAPL: ours 0, "
             "broker 5 -> REDUCING: trading stays HALTED (by operator)")]
        assert engine.trading_state is TradingState.HALTED


async def test_reset_while_the_journal_still_fails_then_trading_halts_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # A reset with the disk still full released the halt for good: the reset's own journal write failed
    # and, the trigger having fired once already, nothing halted.
    async with _halted_by_the_journal(sim, tmp_path) as (engine, _, _):
        # Act
        engine.reset_kill("thought it was fixed")

        # Assert: the reset's record cannot be written, so trading halts again.
        await eventually(lambda: engine.risk.kill_state.engaged, what="halted again")
        assert engine.risk.kill_state.trigger is KillTrigger.JOURNAL_FAILURE


async def test_order_unknown_past_the_timeout_then_its_action_once_while_it_stays_unknown(tmp_path: Path) -> None:
    # The unknown-order trigger as the engine performs it each tick: REDUCING (configured here), said once while
    # the order stays UNKNOWN, by the trigger; not again at every tick.
    config = make_config(tmp_path, limits=limits_for_tests(unknown_order_timeout_s=0.2,
                                                           unknown_order_action="reducing"))
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as first_gateway:
        first = make_engine(first_gateway, config)
        await first.start()
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quotes")
        price = round(first.market.quotes["AAPL"].bid - 1, 2)
        order = await first.submit(buy(10, order_type=OrderType.LMT, limit_price=price))
        await eventually(lambda: status(first, order.order_ref) is OrderStatus.SUBMITTED, what="acknowledged")
        await first.stop()
    async with (SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as amnesiac,  # lost the order
                running(amnesiac, config) as (engine, events)):
        assert status(engine, order.order_ref) is OrderStatus.UNKNOWN

        # Act: the order stays UNKNOWN past the timeout, over many ticks.
        await eventually(lambda: engine.trading_state is TradingState.REDUCING, what="the trigger fired")
        for _ in range(5):
            engine.tick()

        # Assert
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "unknown_order"]
        assert [(a.level, order.order_ref in a.text) for a in said] == [(AlertLevel.ERROR, True)]
        assert engine.risk.last_change is not None
        assert engine.risk.last_change.by == "risk:unknown_order"
        assert not engine.risk.kill_state.engaged


# --- the drawdown's peak after the operator releases a drawdown trip ---------------------------------

OVERNIGHT_S = 23 * 3600.0
"""From the clock's Tuesday 10:00 to Wednesday 09:00, New York."""


async def _price(sim: SimGateway, engine: Engine, price: float) -> None:
    """Set AAPL's price in the simulator and wait until the engine has marked it."""
    sim.control.set_price("AAPL", price)
    await eventually(lambda: (q := engine.market.quotes.get("AAPL")) is not None and q.mark == pytest.approx(price),
                     what=f"AAPL at {price}")


async def _long_100_then_drawdown(sim: SimGateway, engine: Engine) -> None:
    """100 AAPL bought near 100, marked at 200 (the peak), then at 140: 6,000 below the peak."""
    await _price(sim, engine, 100.0)
    entry = await engine.submit(buy(100))
    await eventually(lambda: status(engine, entry.order_ref) is OrderStatus.FILLED, what="entry filled")
    await _price(sim, engine, 200.0)
    await _price(sim, engine, 140.0)


async def test_drawdown_kill_reset_then_the_peak_restarts_and_the_next_day_does_not_trip_again(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # The peak was all-time and nothing reset it: after the operator reset a drawdown halt (typed reason,
    # confirmed twice), every restart and every new trading day tripped it again at the first snapshot, the
    # kill cancelling every working order (the protective stops too), until equity was back near the old peak.
    config = make_config(tmp_path, limits=limits_for_tests(max_drawdown=5_000))
    async with running(sim, config, clock.now) as (day1, _):
        await _long_100_then_drawdown(sim, day1)
        await eventually(lambda: day1.risk.kill_state.engaged, what="drawdown tripped")
        assert day1.risk.kill_state.trigger is KillTrigger.DRAWDOWN

        # Act: the operator accepts the drawdown.
        day1.reset_kill("drawdown accepted, trading on", confirm_same_day=True)

        # Assert: the drawdown is measured from here now.
        account = day1.account_snapshot()
        assert account.high_water_mark == pytest.approx(account.equity)
        assert account.drawdown == 0.0
    clock.advance(OVERNIGHT_S)
    async with running(sim, config, clock.now) as (day2, _):
        await eventually(lambda: day2.book_settled and "AAPL" in day2.market.quotes, what="day 2 settled")
        day2.tick()
        assert not day2.risk.kill_state.engaged, "the released drawdown tripped again the next day"
        # A new drawdown of the limit from the restarted peak still trips.
        await _price(sim, day2, 85.0)
        await eventually(lambda: day2.risk.kill_state.engaged, what="a new drawdown trips")
        assert day2.risk.kill_state.trigger is KillTrigger.DRAWDOWN


async def test_drawdown_reducing_released_by_the_operator_then_the_next_day_stays_active(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # The same with drawdown_action = "reducing": the operator's resume lasted until the next trading day.
    config = make_config(tmp_path, limits=limits_for_tests(max_drawdown=5_000, drawdown_action="reducing"))
    async with running(sim, config, clock.now) as (engine, _):
        await _long_100_then_drawdown(sim, engine)
        await eventually(lambda: engine.trading_state is TradingState.REDUCING, what="drawdown tripped")

        # Act
        engine.reduce_only(False, "drawdown accepted, trading on")
        clock.advance(OVERNIGHT_S)
        engine.tick()

        # Assert
        assert engine.trading_state is TradingState.ACTIVE
        assert engine.account_snapshot().drawdown == 0.0


async def test_drawdown_reducing_trip_then_said_once_in_money_as_elsewhere(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # Every trip to REDUCING was said twice ("losing_streak limit reached: 5 losses (limit 5) -> REDUCING" and
    # "… -> REDUCING: reducing only"), and its money as "6,000 $ (limit 5,000)".
    config = make_config(tmp_path, limits=limits_for_tests(max_drawdown=5_000, drawdown_action="reducing"))
    async with running(sim, config, clock.now) as (engine, events):
        await _long_100_then_drawdown(sim, engine)

        # Act
        await eventually(lambda: engine.trading_state is TradingState.REDUCING, what="drawdown tripped")
        engine.tick()

        # Assert
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and "limit reached" in e.alert.text]
        assert [(a.level, a.kind) for a in said] == [(AlertLevel.ERROR, "drawdown")]
        assert re.fullmatch(r"drawdown limit reached: \$6,0\d\d\.\d\d \(limit \$5,000\.00\) -> REDUCING",
                            said[0].text), said[0].text


async def test_drawdown_reducing_trip_while_halted_then_said_once_that_trading_stays_halted(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # The monitor's alert said "drawdown limit reached: … -> REDUCING", and trading stayed HALTED.
    config = make_config(tmp_path, limits=limits_for_tests(max_drawdown=5_000, drawdown_action="reducing"))
    async with running(sim, config, clock.now) as (engine, events):
        await _price(sim, engine, 100.0)
        entry = await engine.submit(buy(100))
        await eventually(lambda: status(engine, entry.order_ref) is OrderStatus.FILLED, what="entry filled")
        await _price(sim, engine, 200.0)
        engine.kill("going for lunch")
        events.drain()

        # Act
        await _price(sim, engine, 140.0)
        said: list[Alert] = []
        await eventually(lambda: said.extend(alerts_said(events, kind="drawdown")) or bool(said),
                         what="drawdown said")

        # Assert
        assert [a.level for a in said] == [AlertLevel.ERROR]
        assert re.fullmatch(r"drawdown limit reached: \$6,0\d\d\.\d\d \(limit \$5,000\.00\) -> REDUCING: trading stays "
                            r"HALTED \(by operator\)", said[0].text), said[0].text
        assert engine.trading_state is TradingState.HALTED


# --- a trigger the operator released, after a restart the same day ----------------------------------


async def test_daily_loss_kill_reset_then_a_restart_the_same_day_does_not_trip_it_again(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # The monitors remembered in memory only which trips they had made today: after the operator reset a
    # daily-loss halt (typed reason, confirmed twice), a restart the same day tripped it again at the first
    # snapshot, and the kill cancelled every working order, the stops placed since the reset too.
    config = make_config(tmp_path, limits=limits_for_tests(daily_loss_limit=3_000))
    async with running(sim, config, clock.now) as (before, _):
        await _price(sim, before, 100.0)
        entry = await before.submit(buy(100))
        await eventually(lambda: status(before, entry.order_ref) is OrderStatus.FILLED, what="entry filled")
        await _price(sim, before, 60.0)
        await eventually(lambda: before.risk.kill_state.engaged, what="daily loss tripped")
        assert before.risk.kill_state.trigger is KillTrigger.DAILY_LOSS
        before.reset_kill("loss accepted, managing the position", confirm_same_day=True)
        # Stopped at once: the persist the reset spawns may not have run; the stop saves the kill state.
        assert before.trading_state is TradingState.ACTIVE

    # Act: restart an hour later, the same trading day, the loss unchanged.
    clock.advance(3600)
    async with running(sim, config, clock.now) as (after, _):
        await eventually(lambda: after.book_settled and "AAPL" in after.market.quotes, what="settled")
        after.tick()

        # Assert
        assert not after.risk.kill_state.engaged, "the released daily loss tripped again after the restart"
        assert after.account_snapshot().day_pnl < -3_000
    # The next trading day it is armed again.
    clock.advance(OVERNIGHT_S)
    sim.control.set_price("AAPL", 25.0)
    async with running(sim, config, clock.now) as (next_day, _):
        await eventually(lambda: next_day.risk.kill_state.engaged, what="a new day's loss trips")


# --- a trip to HALTED, said once --------------------------------------------------------------------------------


async def test_daily_loss_halted_trip_then_one_critical_alert_saying_what_tripped_its_figures_and_what_the_kill_did(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # One trip was two critical alerts, two messages on the trader's phone: the monitor's "daily_loss limit
    # reached: … -> halted" and the kill switch's "kill switch engaged by risk:daily_loss …", each half the story.
    config = make_config(tmp_path, limits=limits_for_tests(daily_loss_limit=3_000))
    async with running(sim, config, clock.now) as (engine, events):
        await _price(sim, engine, 100.0)
        entry = await engine.submit(buy(100))
        await eventually(lambda: status(engine, entry.order_ref) is OrderStatus.FILLED, what="entry filled")
        events.drain()

        # Act
        await _price(sim, engine, 60.0)
        await eventually(lambda: engine.risk.kill_state.engaged, what="daily loss tripped")
        engine.tick()

        # Assert: one critical alert, the kill switch's, with the trip's figures and what the kill did.
        seen = events.drain()
        (critical,) = [e.alert for e in seen if isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL]
        assert (critical.source, critical.kind) == ("kill_switch", "kill")
        assert re.search(r"daily_loss limit reached: \$4,0\d\d\.\d\d \(limit \$3,000\.00\)", critical.text), \
            critical.text
        assert "Entries cancelled; the open positions' protective orders" in critical.text
        # The journal's records of the trip are as they were: the engagement and the state change, by the monitor.
        assert engine.journal is not None
        await engine.journal.flush()
        (engaged,) = await engine.journal.events(["KillSwitchEngaged"])
        (halted,) = [e for e in await engine.journal.events(["TradingStateChanged"])
                     if e.state is TradingState.HALTED]
        assert (engaged.by, halted.by) == ("risk:daily_loss", "risk:daily_loss")
        assert engaged.reason == halted.reason == engine.risk.kill_state.reason
        assert engaged.reason.startswith("daily_loss limit reached: $4,0")
