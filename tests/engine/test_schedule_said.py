"""The schedule's trading-state changes are said in alerts, as a risk trigger's are: why, and until when.

A headless paper run at night said only "REDUCING; orders 9 REJECTED (9 denied by risk)": nothing on stderr, in the
log or in a notification said that the schedule's close window had set it, nor when it would end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tui_trader.config import Settings
from tui_trader.domain import AlertLevel, Mode, TradingState
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.operations import attach_schedule
from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, make_config, make_engine

START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York


async def test_schedule_when_its_window_begins_and_ends_then_a_warning_says_why_and_until_when_and_an_info_the_end(
        tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path), clock=clock.now)
        attach_schedule(engine, Settings(mode=Mode.PAPER, schedule={
            "gateway_restart": "10:30", "restart_duration_min": 5, "reduce_before_restart_min": 10,
            "reduce_before_close_min": None}))
        events = engine.subscribe("test", lossless=True)
        await engine.start()
        try:
            clock.advance(21 * 60)  # 10:21, inside "10 minutes before the 10:30 restart"
            engine.tick()
            assert engine.trading_state is TradingState.REDUCING
            clock.advance(15 * 60)  # 10:36: the 5-minute restart window is over
            await eventually(lambda: (engine.tick(), engine.trading_state is TradingState.ACTIVE)[1],
                             what="ACTIVE again after a clean reconciliation")
        finally:
            await engine.stop()
    said = [(e.alert.level, e.alert.kind, e.alert.text) for e in events.drain()
            if isinstance(e, AlertRaised) and e.alert.source == "schedule"]
    assert said == [
        (AlertLevel.WARNING, "schedule_reduced", "REDUCING: IB Gateway restart at 10:30 America/New_York; only orders "
         "that reduce exposure pass until Tue 10:35 EST, then ACTIVE again once reconciled"),
        (AlertLevel.INFO, "schedule_restored", "ACTIVE again: reconnected and reconciled cleanly after the window")]
