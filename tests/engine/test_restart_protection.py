"""A position's stop and target after a restart: taken from its protective orders as restored from the journal.

Against the simulator and a real journal: an engine opens a bracket and stops; a second engine starts on the
same journal. Its stop and target work at the broker unchanged, so no status change, fill or adopted book
moves them: the position must take them from the restored orders at start, before the first snapshot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import eventually, make_config, make_engine, protected_long, running, status


async def test_restart_with_a_bracket_working_then_the_first_snapshot_shows_its_stop_and_target(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: 10 AAPL held, its stop and target working at the broker; the engine stops.
    config = make_config(tmp_path)
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        _, stop, target = await protected_long(first)
    # Act: a second engine starts on the same journal.
    second: Engine = make_engine(sim, config)
    try:
        await second.start()
        # Assert: the very first snapshot after the start holds the stop and target the broker works.
        position = second.snapshot().account.positions["AAPL"]
        assert status(second, stop.order_ref) is OrderStatus.SUBMITTED
        assert (position.quantity, position.stop_price, position.take_profit_price) == (
            10, pytest.approx(stop.ticket.stop_price), pytest.approx(target.ticket.limit_price))
    finally:
        await second.stop()
