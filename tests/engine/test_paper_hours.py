"""Paper mode with the default risk configuration: the hours come from IB's contract details.

The simulator runs on exchange hours (not ``always_open``) with a manual clock; the engine reads
the same clock, so "now" is the simulator's. Quotes are stamped with the wall clock on receipt,
years after the manual clock's time: the gate denies a quote stamped in the future (its age is
unknown), so the quote-age limit is off here; everything else is the default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui_trader.config import Settings
from tui_trader.domain import Mode, OrderStatus
from tui_trader.engine.config import EngineConfig, config_from_settings
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, make_engine, status

S = OrderStatus
EVENING = datetime(2024, 3, 5, 22, 0, tzinfo=UTC)  # Tuesday 17:00 New York: after the close


def paper_config(tmp_path: Path) -> EngineConfig:
    """The default paper configuration (hours checks on), trading AAPL by hand, no approvals."""
    config = config_from_settings(Settings(mode=Mode.PAPER))
    assert config.limits.require_liquid_hours
    return config.with_(limits=replace(config.limits, max_quote_age_s=None),
                        journal_path=tmp_path / "journal.sqlite", symbols=("AAPL",), strategies=(),
                        approvals_required=False, ack_timeout_s=2.0, market_data_stale_s=3600,
                        warmup_bars=20, tick_interval_s=0.05)


@pytest.fixture
async def paper(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Engine, SimGateway]]:
    """An engine in paper mode on a DU simulator whose manual clock starts at ``request.param``."""
    clock = ManualClock(request.param)
    async with SimGateway(port=0, clock=clock, seed=7) as gw:
        engine = make_engine(gw, paper_config(tmp_path), clock=clock.now)
        await engine.start()
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
        yield engine, gw
        await engine.stop()


@pytest.mark.parametrize("paper", [None], indirect=True)
async def test_paper_default_config_inside_liquid_hours_then_opens_position(
        paper: tuple[Engine, SimGateway]) -> None:
    engine, gw = paper
    assert engine.account_id.startswith("DU")
    assert engine.market.instruments["AAPL"].liquid_sessions

    order = await engine.submit(buy(10))

    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="entry filled")
    assert engine.portfolio.quantity("AAPL") == gw.positions()["AAPL"] == 10


@pytest.mark.parametrize("paper", [EVENING], indirect=True)
async def test_paper_default_config_outside_liquid_hours_then_denied_naming_hours_check(
        paper: tuple[Engine, SimGateway]) -> None:
    engine, gw = paper

    order = await engine.submit(buy(10))

    assert order.status is S.REJECTED
    failures = {c.name: c.message for c in engine.preview(buy(10)).failures}
    assert failures == {"trading_hours": "outside trading hours"}
    assert gw.order_refs() == []
