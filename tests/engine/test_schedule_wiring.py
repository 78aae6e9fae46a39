"""The schedule drives the running engine: REDUCING before the gateway restart, ACTIVE again only
after the window is over and a reconciliation came back clean."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui_trader.config import Settings
from tui_trader.domain import TradingState
from tui_trader.domain.events import TradingStateChanged
from tui_trader.engine.engine import Engine
from tui_trader.engine.operations import ScheduleRunner, attach_schedule
from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, make_config, make_engine

START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York


@pytest.fixture
async def scheduled(tmp_path: Path) -> AsyncIterator[tuple[Engine, ManualClock, ScheduleRunner]]:
    clock = ManualClock(START)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, market_data_stale_s=3600), clock=clock.now)
        settings = Settings(schedule={"gateway_restart": "10:30", "restart_duration_min": 5,
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
