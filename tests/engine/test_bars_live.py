"""Bars through the engine on the simulator: warm-up size and order, and slices IB sends twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from tui_trader.domain import Bar
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.strategies.base import Signal, Strategy

from .helpers import CLIENT_ID, eventually, make_config, make_engine, running, strategy


class CountingStrategy(Strategy):
    """Counts the bars it is shown (never signals)."""

    calls = 0

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Count the call."""
        CountingStrategy.calls += 1
        return None


class NewestBarSeen(Strategy):
    """Records the newest bar (start, close) of every frame it is shown (never signals)."""

    seen: list[tuple[datetime, float]] = []

    def on_bar(self, symbol: str, bars: pd.DataFrame) -> Signal | None:
        """Record the newest bar."""
        NewestBarSeen.seen.append((bars.index[-1], float(bars["close"].iloc[-1])))
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


async def whole_minute(engine: Engine, minute: datetime) -> Bar:
    """The simulator's history of AAPL's ``minute``, asked for once it is over."""
    return next(b for b in await engine.broker.historical_bars("AAPL", 120, 60) if b.time == minute)


async def test_history_asked_in_a_minute_s_last_seconds_and_answered_after_it_then_that_minute_is_whole_and_seen(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"{__name__}:NewestBarSeen", ("AAPL",), 60),),
                         warmup_bars=5)
    sim.control.set_pacing(100, 3600)  # never paces: counts the history requests answered
    sim.advance(50)  # 15:00:50
    engine = make_engine(sim, config, clock=clock.now)
    await engine.open_journal()
    engine.load_strategies()
    await engine.connect_and_sync(startup=True)
    session = sim.sessions[CLIENT_ID]
    try:
        session.hold()  # IB's answer takes a moment: the minute ends before it arrives
        warming = asyncio.create_task(engine.warm_up())
        await eventually(lambda: session.requests, what="the history asked for")
        sim.advance(10)  # 15:01:00: the minute's last two slices follow the answer (all released now)
        await warming

        minute = clock.now() - timedelta(minutes=1)
        whole, got = await whole_minute(engine, minute), engine.series[("AAPL", 60)].bars[-1]
        assert (got.time, got.open, got.high, got.low, got.close) == (minute, whole.open, whole.high, whole.low,
                                                                      whole.close)
        assert got.volume >= whole.volume  # the slice holding the request may count twice, none is missing
        assert NewestBarSeen.seen[-1] == (minute, whole.close)  # the strategy ran on it as it completed
    finally:
        await engine.stop()


async def test_reconnect_within_a_minute_then_the_re_warm_and_live_slices_make_that_minute_whole(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"{__name__}:NewestBarSeen", ("AAPL",), 60),),
                         warmup_bars=5)
    sim.control.set_pacing(100, 3600)  # never paces: counts the history requests answered
    async with running(sim, config, clock=clock.now) as (engine, _):
        sim.advance(17)  # 15:00:17: three slices of the 15:00 minute live
        before = sim.sessions[CLIENT_ID]
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: not engine.broker.is_connected, what="disconnected")
        sim.advance(20)  # 15:00:37: the slices of the outage are missed
        sim.control.refuse_connections(-1)
        await eventually(lambda: (s := sim.sessions.get(CLIENT_ID)) not in (None, before) and s.requests,
                         what="reconnected and warmed up again")
        sim.advance(23)  # 15:01:00

        minute = clock.now() - timedelta(minutes=1)
        series = engine.series[("AAPL", 60)]
        await eventually(lambda: series.bars[-1].time == minute, timeout=5, what="the 15:00 bar")
        whole, got = await whole_minute(engine, minute), series.bars[-1]
        assert (got.open, got.high, got.low, got.close) == (whole.open, whole.high, whole.low, whole.close)
        assert NewestBarSeen.seen[-1] == (minute, whole.close)
