"""Bars on the exchange's clock through the engine on the simulator: on the day New York's clock falls back,
the 2-hour bar from midnight (three hours long) is begun by the warm-up's history and finished by live slices."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, make_config, running, strategy
from .test_bars_live import NewestBarSeen

BERLIN = ZoneInfo("Europe/Berlin")
MIDNIGHT = datetime(2024, 11, 3, 4, tzinfo=UTC)
"""00:00 EDT on the day 02:00 EDT becomes 01:00 EST (06:00 UTC): the 2-hour bar from midnight ends at
02:00 EST, 07:00 UTC. On the epoch it would have run from 06:00 to 08:00 UTC."""


@pytest.fixture
def clock() -> ManualClock:
    """01:59 EST: a minute before the bar from midnight ends."""
    return ManualClock(MIDNIGHT + timedelta(hours=2, minutes=59))


async def test_warm_up_within_the_bar_holding_the_clock_change_then_live_slices_finish_it_at_02_00_est(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"{__name__}:NewestBarSeen", ("AAPL",), 7200),),
                         warmup_bars=5)
    async with running(sim, config, clock=clock.now) as (engine, _):
        series = engine.series[("AAPL", 7200)]
        assert series.bars[-1].time == MIDNIGHT - timedelta(hours=2)  # 22:00 EDT: history on the same clock

        for _ in range(12):
            sim.advance(5)
        await eventually(lambda: series.bars[-1].time == MIDNIGHT, timeout=5, what="the bar from midnight")

        hours = [b for b in await engine.broker.historical_bars("AAPL", 4 * 3600, 3600)
                 if MIDNIGHT <= b.time < MIDNIGHT + timedelta(hours=3)]
        got = series.bars[-1]
        assert [b.time.hour for b in hours] == [4, 5, 6]
        assert (got.open, got.high, got.low, got.close) == (
            hours[0].open, max(b.high for b in hours), min(b.low for b in hours), hours[-1].close)
        assert NewestBarSeen.seen[-1] == (MIDNIGHT, hours[-1].close)  # the strategy ran on it as it completed


async def test_warm_up_of_a_symbol_on_another_exchange_s_clock_then_its_bars_follow_that_clock(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"{__name__}:NewestBarSeen", ("AAPL",), 14_400),),
                         warmup_bars=5)
    async with running(sim, config, clock=clock.now) as (engine, _):
        series = engine.series[("AAPL", 14_400)]
        assert len(series.bars) >= 3
        assert {ny_hour(b.time) % 4 for b in series.bars} == {0}
        aapl = engine.market.instruments["AAPL"]
        engine.market.set_instruments({"AAPL": replace(aapl, time_zone="Europe/Berlin")})  # as if listed there

        await engine.warm_up()

        assert series.clock.zone == "Europe/Berlin"
        assert len(series.bars) >= 3
        assert {b.time.astimezone(BERLIN).hour % 4 for b in series.bars} == {0}


async def test_connect_when_the_broker_names_new_york_us_eastern_then_the_bars_kept_and_nothing_logged(
        sim: SimGateway, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Each connect logged "AAPL 60s bars follow US/Eastern's clock, not America/New_York's: 0 bars dropped" (IB's and
    # the simulator's name of New York's zone), and a warm-up again dropped the bars it had to refill them.
    config = make_config(tmp_path, strategies=(strategy(f"{__name__}:NewestBarSeen", ("AAPL",), 60),),
                         warmup_bars=5)
    with caplog.at_level(logging.INFO, logger="tui_trader.engine.market"):
        async with running(sim, config, clock=clock.now) as (engine, _):
            series = engine.series[("AAPL", 60)]
            assert engine.market.instruments["AAPL"].time_zone == "US/Eastern"
            bars = list(series.bars)

            await engine.warm_up()  # as on a reconnect

            assert list(series.bars)[:len(bars)] == bars
    assert [r.getMessage() for r in caplog.records if "clock" in r.getMessage()] == []


def ny_hour(when: datetime) -> int:
    """The hour New York's clock reads at ``when``."""
    return when.astimezone(ZoneInfo("America/New_York")).hour
