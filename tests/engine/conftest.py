"""Fixtures of the engine tests: the simulator (manual clock) and an engine connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, make_config, make_engine


@pytest.fixture
def clock() -> ManualClock:
    """The simulator's manual clock."""
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimGateway]:
    """A simulator on an ephemeral port."""
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        yield gw


@pytest.fixture
def engine_changes() -> dict[str, Any]:
    """Config changes for the ``engine`` fixture: a test sets its own with
    ``@pytest.mark.parametrize("engine_changes", [{...}])``."""
    return {}


@pytest.fixture
async def engine(sim: SimGateway, tmp_path: Path, engine_changes: dict[str, Any]) -> AsyncIterator[Engine]:
    """A started engine (no approvals, no strategies) with quotes for AAPL and MSFT."""
    eng = make_engine(sim, make_config(tmp_path, **engine_changes))
    try:
        await eng.start()  # inside: a start that fails is stopped too (its journal closed)
        await eventually(lambda: {"AAPL", "MSFT"} <= set(eng.market.quotes), what="first quotes")
        yield eng
    finally:
        await eng.stop()
