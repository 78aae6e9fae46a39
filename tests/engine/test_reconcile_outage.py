"""Reconciliation after an outage in which the broker both filled and finished an order: the fills it missed
are booked before the final state it settles, so nothing that reads the order then sees it finished with
nothing filled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain import Bracket, ConnectionState, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.domain.orders import Order
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import CLIENT_ID, bracket_buy, eventually, kinds_of, make_config, protected_long, running, status

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


async def test_reconnect_when_a_stops_cut_was_lost_with_the_connection_then_the_brokers_size_is_shown_and_cut_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # Long 100 with a stop of 100; a sell of 30 fills and the stop is cut to 70. The connection died with the cut
    # on the wire, unread by the gateway: the broker kept the stop at 100, the engine (which records a modify
    # before it sends it) showed 70, and no reconciliation compared the two. Had the stop triggered, it would
    # have sold 100 of the 70 held: short 30.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        place = eng.broker.place

        def place_then_lose_the_connection(order: Order, broker_id: int, **links: Any) -> None:
            place(order, broker_id, **links)
            if order.order_ref == stop.order_ref:  # the gateway never reads the cut
                eng.broker.place = place  # type: ignore[method-assign]
                sim.control.drop_sessions(CLIENT_ID)

        eng.broker.place = place_then_lose_the_connection  # type: ignore[method-assign]
        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.MKT))
        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the sell")
        await eventually(lambda: eng.reconnects >= 1 and "reconciling" not in eng.blocks,
                         what="reconnected and reconciled")

        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [70],
                         what="the stop cut to 70 at the broker")
        assert eng.orders.orders[stop.order_ref].ticket.quantity == 70 == sim.positions()["AAPL"]
        texts = [e.alert.text for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "order_figures"]
        assert texts == [f"{stop.order_ref} (STP SELL AAPL) at the broker: quantity 100, not 70: taken from the broker"]


async def test_reconnect_when_the_target_filled_in_part_in_the_outage_then_booked_once_and_the_stop_fits_the_rest(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker reduces the stop by the target's fill (one OCA group): shown at its size before the fill is booked;
    # the target then cancelled by the operator leaves the stop on the 70 held.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        _, stop, target = await protected_long(eng, 100)
        price = target.ticket.limit_price
        assert price is not None
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: eng.connection.state is not ConnectionState.CONNECTED, what="disconnected")
        sim.control.set_quote("AAPL", round(price + 0.01, 2), round(price + 0.03, 2), 30, 100)  # 30 bid at the target
        sim.control.set_quote("AAPL", round(price - 0.50, 2), round(price - 0.48, 2), 100, 100)  # and no more
        assert sim.positions()["AAPL"] == 70
        events.drain()
        sim.control.refuse_connections(0)
        await eventually(lambda: eng.reconnects >= 1 and "reconciling" not in eng.blocks, what="reconciled")

        await eng.cancel(target.order_ref)
        await eventually(lambda: status(eng, target.order_ref) is S.CANCELLED, what="the target cancelled")

        assert eng.orders.orders[target.order_ref].filled_quantity == 30
        assert eng.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 70
        assert [(o.order_ref, o.total_qty) for o in sim.orders() if o.working] == [(stop.order_ref, 70)]
        assert eng.orders.orders[stop.order_ref].remaining == 70
        assert [(p.stop_price, p.take_profit_price) for p in [eng.portfolio.positions["AAPL"]]] == [
            (stop.ticket.stop_price, None)]
        assert eng.journal is not None
        await eng.journal.flush()
        assert sorted(f.quantity for f in await eng.journal.fills()) == [30, 100]
        said = {k: e.alert.text for e in events.drain() if isinstance(e, AlertRaised) for k in kinds_of(e.alert)}
        assert said["order_figures"] == (f"{stop.order_ref} (STP SELL AAPL) at the broker: quantity 70, not 100: "
                                         "taken from the broker")  # the broker's OCA reduced it by the fill
        assert {"fill_recovered", "order_reconciled"} <= set(said)
        assert "position_mismatch" not in said


async def test_reconnect_when_the_connection_drops_again_mid_reconciliation_then_the_next_one_settles_once(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        limit = round(eng.market.quotes["AAPL"].bid - 1.0, 2)
        order = await eng.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=limit))
        await eventually(lambda: status(eng, order.order_ref) is S.SUBMITTED)
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: eng.connection.state is not ConnectionState.CONNECTED, what="disconnected")
        sim.control.set_price("AAPL", limit - 0.5)  # filled in the outage
        open_orders = eng.broker.open_orders

        async def drop_again(all_clients: bool = False) -> list[BrokerOrderReport]:
            eng.broker.open_orders = open_orders  # type: ignore[method-assign]
            sim.control.drop_sessions(CLIENT_ID)  # the first reconnect's reconciliation loses its connection
            return await open_orders(all_clients)

        eng.broker.open_orders = drop_again  # type: ignore[method-assign]
        events.drain()
        sim.control.refuse_connections(0)
        # The first reconnect, whose reconciliation lost its connection, was a connect that failed: not counted.
        await eventually(lambda: eng.reconnects >= 1 and "reconciling" not in eng.blocks, what="reconciled at last")

        assert eng.broker.open_orders == open_orders  # the first reconnect's reconciliation went through drop_again
        assert status(eng, order.order_ref) is S.FILLED
        assert eng.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 10
        assert not eng.blocks
        kinds = [k for e in events.drain() if isinstance(e, AlertRaised) for k in kinds_of(e.alert)]
        assert kinds.count("fill_recovered") == 1
        assert kinds.count("order_reconciled") == 1
        assert "position_mismatch" not in kinds
