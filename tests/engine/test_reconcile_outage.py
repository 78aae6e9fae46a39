"""Reconciliation after an outage in which the broker both filled and finished an order: the fills it missed
are booked before the final state it settles, so nothing that reads the order then sees it finished with
nothing filled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.domain import Bracket, ConnectionState, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import CLIENT_ID, eventually, make_config, running, status

S = OrderStatus
UNHEARD = ("open_order", "order_status", "execution", "commission")
"""What the engine would hear of an order's fills and end: lost with the connection."""


def deaf(sim: SimGateway, *also: str) -> None:
    """The engine hears nothing more of its orders, nor ``also`` (the connection is about to drop)."""
    for kind in (*UNHEARD, *also):
        sim.control.drop_messages(kind, -1)


async def reconnected(engine: Engine, sim: SimGateway) -> None:
    """Drop the engine's session (what it missed stays missed) and wait for the reconnect's reconciliation."""
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.connection.state is not ConnectionState.CONNECTED, what="disconnected")
    sim.control.clear_faults()
    await eventually(lambda: engine.reconnects >= 1 and "reconciling" not in engine.blocks,
                     what="reconnected and reconciled")


@pytest.mark.parametrize("unheard", [(), ("error",)], ids=["cancel-heard", "cancel-unheard"])
async def test_reconnect_when_a_cancelled_bracket_entry_filled_in_part_unheard_then_its_stop_is_placed_for_the_part(
        sim: SimGateway, tmp_path: Path, unheard: tuple[str, ...]) -> None:
    # The operator cancelled a bracket entry; 30 of its 100 had filled just before, and the fill did not reach the
    # engine before the connection dropped. The entry ended CANCELLED before its fill was booked (the cancel's
    # answer heard, its 202; or, unheard, settled from the completed orders before the executions were fetched):
    # it read "cancelled, nothing filled", so its stop (cancelled by the broker with it) was not placed again, and
    # the 30 the reconciliation booked a moment later were left with nothing at the broker, nothing said.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        quote = sim.quote("AAPL")
        limit, stop_price = round(quote.bid - 1, 2), round(quote.bid - 4, 2)
        entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.LMT, limit_price=limit,
                                             bracket=Bracket(stop_price=stop_price)))
        (stop,) = eng.orders.children(entry.order_ref)
        await eventually(lambda: {status(eng, entry.order_ref), status(eng, stop.order_ref)} == {S.SUBMITTED})
        deaf(sim, *unheard)
        sim.control.set_quote("AAPL", round(limit - 0.02, 2), limit, 100, 30)  # 30 offered at the limit: filled
        await eventually(lambda: sim.positions().get("AAPL") == 30, what="30 filled at the broker")
        await eng.cancel(entry.order_ref)
        await eventually(lambda: not [o for o in sim.orders() if o.working], what="entry and stop cancelled")

        await reconnected(eng, sim)

        assert (status(eng, entry.order_ref), eng.orders.orders[entry.order_ref].filled_quantity) == (S.CANCELLED, 30)
        assert eng.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 30
        await eventually(lambda: [(o.action, o.total_qty, o.aux_price) for o in sim.orders() if o.working]
                         == [("SELL", 30, stop_price)], what="a stop for the 30 at the broker")
        (placed,) = eng.protection_working("AAPL")
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "protection_replaced"] == [
            f"{entry.order_ref} was cancelled with 30 of 100 filled; the broker cancelled its stop with it: "
            f"placed again for 30 AAPL as {placed.order_ref}"]
