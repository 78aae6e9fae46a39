"""Fixtures of the simulator tests: a gateway on an ephemeral port (manual clock) and a real
``ib_async.IB`` connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import ib_async
import pytest

from tui_trader.sim import ManualClock, SimGateway

from .helpers import connect


@pytest.fixture
def clock() -> ManualClock:
    """The manual clock of the simulator (Tuesday 10:00 New York time)."""
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimGateway]:
    """A simulator on an ephemeral port with a manual clock."""
    async with SimGateway(port=0, clock=clock, seed=7) as gw:
        yield gw


@pytest.fixture
async def ib(sim: SimGateway) -> AsyncIterator[ib_async.IB]:
    """A real ib_async client connected to ``sim``."""
    client = await connect(sim)
    yield client
    client.disconnect()


@pytest.fixture
async def aapl(ib: ib_async.IB) -> ib_async.Contract:
    """AAPL, qualified."""
    (contract,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    assert contract is not None
    return contract
