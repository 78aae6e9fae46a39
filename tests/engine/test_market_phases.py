"""The snapshot's market phase per symbol, from the broker's hours (the simulator keeping New York's hours).

The simulator runs on exchange hours (not ``always_open``) with a manual clock the engine reads too, so "now"
is the simulator's; its contract details give AAPL's hours as IB does (04:00-20:00 extended, 09:30-16:00 regular).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from tui_trader.config import Settings
from tui_trader.domain import Mode
from tui_trader.domain.market import MarketPhase
from tui_trader.engine.config import EngineConfig, config_from_settings
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .helpers import alerts_said, eventually, make_engine, strategy

P = MarketPhase
PRE_MARKET = datetime(2024, 3, 5, 11, 0, tzinfo=UTC)  # Tuesday 06:00 New York
NIGHT = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)  # Tuesday 03:00 New York: closed until the 04:00 pre-market


def paper_config(tmp_path: Path) -> EngineConfig:
    """Paper mode as configured for a real gateway (hours followed), watching AAPL, no strategies."""
    config = config_from_settings(Settings(mode=Mode.PAPER))
    return config.with_(journal_path=tmp_path / "journal.sqlite", symbols=("AAPL",), strategies=(),
                        ack_timeout_s=2.0, market_data_stale_s=3600, tick_interval_s=0.05)


@asynccontextmanager
async def quoted(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Engine]:
    """A started paper engine on a simulator keeping exchange hours, on ``clock``, AAPL's hours and quote in."""
    async with SimGateway(port=0, clock=clock, seed=7) as gw:
        engine = make_engine(gw, paper_config(tmp_path), clock=clock.now)
        await engine.start()
        try:
            market = engine.market
            await eventually(lambda: "AAPL" in market.quotes and "AAPL" in market.phases(clock.now()),
                             what="AAPL's hours and first quote")
            yield engine
        finally:
            await engine.stop()


async def test_snapshot_market_phase_through_the_day_then_pre_open_post_and_closed(tmp_path: Path) -> None:
    clock = ManualClock(PRE_MARKET)
    async with quoted(tmp_path, clock) as engine:
        said = [engine.snapshot().market_phases]
        for hours in (4, 6.5, 4):  # 10:00, 16:30, 20:30 New York
            clock.advance(hours * 3600)
            said.append(engine.snapshot().market_phases)

    assert said == [{"AAPL": P.PRE}, {"AAPL": P.OPEN}, {"AAPL": P.POST}, {"AAPL": P.CLOSED}]


def test_config_for_the_embedded_simulator_then_hours_not_followed_and_for_a_gateway_followed() -> None:
    # --sim's simulator trades around the clock whatever hours it reports: a phase from them would say CLOSED over
    # moving prices at night.
    assert not config_from_settings(Settings(mode=Mode.SIM)).exchange_hours
    assert config_from_settings(Settings(mode=Mode.PAPER)).exchange_hours


async def test_stall_check_when_the_market_is_closed_then_no_stall_and_from_the_open_counted_from_it(
        tmp_path: Path) -> None:
    # Every night and weekend, 15 s after connecting: "market data stalled", new entries blocked, DEGRADED, pushed.
    clock = ManualClock(NIGHT)
    config = paper_config(tmp_path).with_(strategies=(strategy("ema_cross"),), market_data_stale_s=15)
    async with SimGateway(port=0, clock=clock, seed=7) as gw:
        engine = make_engine(gw, config, clock=clock.now)
        events = engine.subscribe("test", lossless=True)
        await engine.start()
        try:
            await eventually(lambda: engine.is_connected and "AAPL" in engine.market.phases(clock.now()),
                             what="connected, AAPL's hours in")
            said = []
            # 03:10 closed; 04:00:10 and 04:00:20, the pre-market open; 20:00:20, closed again
            for seconds in (600, 3000 + 10, 10, 16 * 3600):
                clock.advance(seconds)
                engine.tick()
                said.append(([a.text for a in alerts_said(events) if a.kind in ("md_stale", "entries_unblocked")],
                             engine.entries_blocked_reason))
        finally:
            await engine.stop()

    assert said == [([], ""), ([], ""),
                    (["market data stalled: none in the 20s since the market opened"], "market data stalled"),
                    (["entry block lifted: market data stalled"], "")]
