"""Bars through the engine on the simulator: warm-up size and order, and slices IB sends twice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tui_trader.domain import Bar
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.strategies.base import Signal, Strategy

from .helpers import eventually, make_config, make_engine, running, strategy


class CountingStrategy(Strategy):
    """Counts the bars it is shown (never signals)."""

    calls = 0

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Count the call."""
        CountingStrategy.calls += 1
        return None


async def test_same_5s_slice_twice_then_strategies_run_once(sim: SimGateway, clock: ManualClock,
                                                            tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"{__name__}:CountingStrategy"),))
    async with running(sim, config, clock=clock.now) as (engine, _):
        when = clock.now() + pd.Timedelta(hours=1)
        bar = Bar("AAPL", when, 100, 100.1, 99.9, 100, 100, 100, 1)
        before = CountingStrategy.calls

        engine.on_bar(bar)
        engine.on_bar(bar)  # IB sends the last slice again (after a resubscribe)

        assert CountingStrategy.calls - before == 1


async def test_macd_needs_more_than_the_config_count_then_warm_up_fetches_what_it_needs(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    macd = strategy("macd", ("AAPL",), 60, slow=60, signal=20)
    config = make_config(tmp_path, strategies=(macd,), warmup_bars=120)
    async with running(sim, config, clock=clock.now) as (engine, _):
        needed = engine.strategies["macd"].strategy.warmup_bars

        assert needed > 120
        assert len(engine.series[("AAPL", 60)].bars) >= needed


async def test_live_slice_before_the_history_then_the_history_is_kept(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy("macd", ("AAPL",), 60),), warmup_bars=30)
    engine = make_engine(sim, config, clock=clock.now)
    engine.load_strategies()
    engine.on_bar(Bar("AAPL", clock.now(), 100, 100.1, 99.9, 100, 100, 100, 1))  # subscribed before warm-up
    await engine.broker.connect()
    try:
        await engine.warm_up()

        series = engine.series[("AAPL", 60)]
        assert len(series.bars) >= 30
        assert series.bars[-1].time < clock.now()
    finally:
        engine.broker.disconnect()


async def test_warm_up_mid_minute_then_the_live_slices_finish_that_minute_as_history_has_it(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy("macd", ("AAPL",), 60),), warmup_bars=30)
    sim.advance(20)  # 15:00:20: IB's history "ending now" holds 20 seconds of the 15:00 minute
    async with running(sim, config, clock=clock.now) as (engine, _):
        series = engine.series[("AAPL", 60)]
        minute = clock.now().replace(second=0)
        assert series.bars[-1].time < minute

        for _ in range(8):
            sim.advance(5)
        await eventually(lambda: series.bars[-1].time == minute, what="the 15:00 bar")

        history = await engine.broker.historical_bars("AAPL", 120, 60)
        expected = next(b for b in history if b.time == minute)
        got = series.bars[-1]
        assert (got.open, got.high, got.low, got.close) == (expected.open, expected.high, expected.low,
                                                            expected.close)


async def test_load_when_a_symbol_is_listed_twice_in_two_cases_then_it_is_one(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # The strategies pane read "AAPL, AAPL, MSFT" for symbols = ["aapl", "AAPL", "MSFT"].
    config = make_config(tmp_path, strategies=(strategy("macd", ("aapl", "AAPL", "MSFT"), 60),))
    engine = make_engine(sim, config, clock=clock.now)
    engine.load_strategies()

    assert engine.strategies["macd"].symbols == ("AAPL", "MSFT")
    assert [s.symbols for s in engine.strategy_statuses()] == [("AAPL", "MSFT")]
