"""The daily loss and drawdown limits after a restart: the book comes back with its marks and peak.

Against the simulator and a real journal: an engine runs, stops (or dies), the price moves while it
is down, and a second engine on the same journal starts. The day's P&L starts from the equity at
the last known marks, not at cost or at the first new quote; drawdown is measured from the
all-time high-water mark, which the engine journals now and then while it rises.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus
from tui_trader.domain.events import BookCheckpointed
from tui_trader.engine.engine import Engine
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, limits_for_tests, make_config, running, status

OVERNIGHT_S = 23 * 3600.0
"""From the clock's Tuesday 10:00 to Wednesday 09:00, New York."""


async def _hold_100_aapl_at(sim: SimGateway, engine: Engine, price: float) -> None:
    """Buy 100 AAPL with the price at ``price`` and wait for the fill."""
    await _price(sim, engine, price)
    order = await engine.submit(buy(100))
    await eventually(lambda: status(engine, order.order_ref) is OrderStatus.FILLED, what="entry filled")


async def _price(sim: SimGateway, engine: Engine, price: float) -> None:
    """Set AAPL's price in the simulator and wait until the engine has marked the position at it."""
    sim.control.set_price("AAPL", price)
    await eventually(lambda: engine.market.quotes.get("AAPL") is not None
                     and engine.market.quotes["AAPL"].mark == pytest.approx(price), what=f"AAPL at {price}")


async def test_restart_overnight_then_the_day_starts_from_the_last_marked_equity_and_the_daily_loss_trips(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # Arrange: day 1, 100 AAPL bought near 100 and marked at 150 when the engine stops for the night.
    config = make_config(tmp_path, limits=limits_for_tests(daily_loss_limit=3_000))
    async with running(sim, config, clock.now) as (day1, _):
        await _hold_100_aapl_at(sim, day1, 100.0)
        await _price(sim, day1, 150.0)
        close_equity = day1.portfolio.equity
    # Act: the next morning AAPL is at 110 (4,000 lost on the position since the close); restart.
    clock.advance(OVERNIGHT_S)
    sim.control.set_price("AAPL", 110.0)
    async with running(sim, config, clock.now) as (day2, _):
        await eventually(lambda: day2.risk.kill_state.engaged, what="daily loss limit tripped")
        account = day2.account_snapshot()
        # Assert: the day started from the last marked equity, as the console shows it, and the limit tripped.
        assert account.start_of_day_equity == pytest.approx(close_equity)
        assert account.day_pnl == pytest.approx(-4_000, abs=5)
        assert day2.risk.kill_state.trigger is KillTrigger.DAILY_LOSS


async def test_restart_overnight_then_drawdown_is_from_the_journaled_peak_and_trips(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # Arrange: day 1, a position that rose 10,000 (the peak) and closed 8,000 up: 8,000 below the peak.
    config = make_config(tmp_path, limits=limits_for_tests(max_drawdown=10_000))
    async with running(sim, config, clock.now) as (day1, _):
        await _hold_100_aapl_at(sim, day1, 100.0)
        await _price(sim, day1, 200.0)
        peak = day1.portfolio.high_water_mark
        await _price(sim, day1, 120.0)
        assert not day1.risk.kill_state.engaged
    # Act: the next day 4,000 more are lost while the engine is down; restart.
    clock.advance(OVERNIGHT_S)
    sim.control.set_price("AAPL", 80.0)
    async with running(sim, config, clock.now) as (day2, _):
        await eventually(lambda: day2.risk.kill_state.engaged, what="drawdown limit tripped")
        account = day2.account_snapshot()
        # Assert: 12,000 below yesterday's peak, which the console shows as the mark too.
        assert account.high_water_mark == pytest.approx(peak)
        assert account.drawdown == pytest.approx(12_000, abs=5)
        assert day2.risk.kill_state.trigger is KillTrigger.DRAWDOWN


async def test_crash_after_a_new_peak_then_the_periodic_checkpoint_kept_it_and_drawdown_trips(
        sim: SimGateway, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: a peak reached after the last checkpoint (the seed's), then a new checkpoint is due.
    config = make_config(tmp_path, limits=limits_for_tests(max_drawdown=10_000), book_checkpoint_s=30.0)
    async with running(sim, config, clock.now) as (engine, events):
        await _hold_100_aapl_at(sim, engine, 100.0)
        await _price(sim, engine, 200.0)
        peak = engine.portfolio.high_water_mark
        clock.advance(31)
        await eventually(lambda: any(isinstance(e, BookCheckpointed) and e.reason.startswith("periodic")
                                     and e.state["high_water_mark"] == peak for e in events.drain()),
                         what="periodic checkpoint with the peak")
        # Quotes within the interval write nothing more.
        for price in (190.0, 195.0, 185.0):
            await _price(sim, engine, price)
            engine.tick()
        assert not [e for e in events.drain() if isinstance(e, BookCheckpointed)]
        # The engine dies: no checkpoint at the stop.
        monkeypatch.setattr(engine, "checkpoint_book", lambda reason: None)
    # Act: the same day, AAPL falls to 12,000 below the peak while it is down; restart.
    monkeypatch.undo()
    sim.control.set_price("AAPL", 80.0)
    async with running(sim, config, clock.now) as (again, _):
        await eventually(lambda: again.risk.kill_state.engaged, what="drawdown limit tripped")
        # Assert
        assert again.account_snapshot().high_water_mark == pytest.approx(peak)
        assert again.risk.kill_state.trigger is KillTrigger.DRAWDOWN
