"""The engine's own orderRefs are its run's prefix and a counter: a run never makes a ref an earlier run made."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus, OrderType
from tui_trader.domain.events import OrderUpdated
from tui_trader.domain.orders import Order
from tui_trader.engine import orders
from tui_trader.sim import SimGateway
from tui_trader.store import Journal

from .helpers import below_bid, buy, eventually, make_config, running

S = OrderStatus
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def _drawn(monkeypatch: pytest.MonkeyPatch, *prefixes: str) -> Iterator[str]:
    """The ref prefixes the runs draw, in turn: ``prefixes``."""
    draws = iter(prefixes)
    monkeypatch.setattr(orders, "draw_ref_prefix", lambda: next(draws))
    return draws


@pytest.mark.parametrize("earlier", [S.FILLED, S.SENDING])
async def test_own_refs_when_the_run_draws_an_earlier_run_s_prefix_then_it_draws_again(
        sim: SimGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier: OrderStatus) -> None:
    # Drawn at random (24 bits), a prefix may repeat across runs: the new run's first order took the ref of the earlier
    # run's first order, and its journal row.
    config = make_config(tmp_path)
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    first = Order("ttdead00-1", buy(7), earlier, T0, T0).with_status(earlier, T0, "an earlier run's")
    journal.append(OrderUpdated(T0, first, None))
    await journal.close()
    draws = _drawn(monkeypatch, "ttdead00", "ttbeef00")

    async with running(sim, config) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="a quote")
        order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))

    assert order.order_ref == "ttbeef00-1"
    assert list(draws) == []
    journal = await Journal.open(config.journal_path)
    try:
        kept = await journal.order(first.order_ref)
    finally:
        await journal.close()
    assert kept is not None
    assert kept.ticket.quantity == 7
