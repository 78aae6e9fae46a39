"""An order adopted from the broker that can only take its position down is the position's protection.

A stop found working at the broker (its bracket's journal lost, or typed into TWS on the engine's client) was
adopted as a plain order: an automatic trip, which keeps the positions' protective orders, cancelled it and left
the position without a stop, and the positions showed none. Now an adopted stop, stop limit, trailing stop or
limit on the side opposite the broker's position, for no more than it, is adopted as protection. Real engine
against the simulator over loopback.
"""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import Order, OrderStatus
from tui_trader.domain.events import AlertRaised, KillChecked
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import SimGateway
from tui_trader.sim.orders import SimOrder

from .helpers import eventually, make_config, outside_client, placed_by_another_tool, running


async def _long_at_the_broker(sim: SimGateway, qty: float = 10) -> float:
    """AAPL bought ``qty`` at the broker by another client (TWS, id 99): the bid after the fill."""
    async with outside_client(sim) as (outsider, contract):
        trade = outsider.placeOrder(contract, ib_async.MarketOrder("BUY", qty))
        await eventually(lambda: trade.orderStatus.status == "Filled", what="bought at the broker")
    return sim.quote("AAPL").bid


async def _stop_placed(sim: SimGateway, action: str, qty: float, bid: float) -> SimOrder:
    """A GTC stop ``action`` ``qty`` AAPL 5 below ``bid``, placed on the engine's client by another tool."""
    order = ib_async.Order(action=action, totalQuantity=qty, orderType="STP", auxPrice=round(bid - 5, 2), tif="GTC")
    if action == "BUY":  # a buy stop above the price, so that it rests
        order.auxPrice = round(bid + 5, 2)
    return await placed_by_another_tool(sim, order)


def _adopted(orders: dict[str, Order]) -> Order:
    (adopted,) = [o for o in orders.values() if o.ticket.strategy == "adopted"]
    return adopted


async def test_stop_adopted_under_a_long_when_an_automatic_trip_then_the_stop_kept_at_the_broker(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 10 at the broker, a SELL STP 10 on the engine's client that its journal never knew.
    held = await _stop_placed(sim, "SELL", 10, await _long_at_the_broker(sim))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = _adopted(engine.orders.orders)

        # Act: an automatic trip (it keeps the positions' protection).
        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)

        # Assert: the trip kept the stop: still working at the broker and here.
        checks: list[KillChecked] = []
        await eventually(lambda: checks.extend(e for e in events.drain() if isinstance(e, KillChecked)) or checks,
                         what="the kill's verification")
        assert checks[-1].report.kept == (adopted.order_ref,)
        assert checks[-1].report.verified
        assert held.working
        assert engine.orders.orders[adopted.order_ref].status is OrderStatus.SUBMITTED


async def test_stop_adopted_under_a_long_then_the_positions_show_it_as_the_stop(
        sim: SimGateway, tmp_path: Path) -> None:
    held = await _stop_placed(sim, "SELL", 10, await _long_at_the_broker(sim))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.snapshot().account.positions, what="the position seeded")
        account = engine.snapshot().account

        assert account.positions["AAPL"].stop_price == held.aux_price
        assert account.stop_covered("AAPL") == 10
        (said,) = [e.alert.text for e in events.drain()
                   if isinstance(e, AlertRaised) and e.alert.kind == "order_adopted"]
        assert "adopted as protection of AAPL LONG 10" in said


@pytest.mark.parametrize(("action", "qty"), [("BUY", 10), ("SELL", 15)], ids=["same-side", "larger"])
async def test_stop_adopted_on_the_positions_side_or_larger_than_it_then_not_protection(
        sim: SimGateway, tmp_path: Path, action: str, qty: float) -> None:
    held = await _stop_placed(sim, action, qty, await _long_at_the_broker(sim))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = _adopted(engine.orders.orders)
        await eventually(lambda: "AAPL" in engine.snapshot().account.positions, what="the position seeded")

        assert not adopted.ticket.reduce_only
        assert engine.snapshot().account.positions["AAPL"].stop_price is None
        (said,) = [e.alert.text for e in events.drain()
                   if isinstance(e, AlertRaised) and e.alert.kind == "order_adopted"]
        assert "protection" not in said
        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)
        await eventually(lambda: not held.working, what="cancelled by the trip: it could add exposure")
