"""Orders and executions of other clients on the account: never taken for ours by an order id, and an
order adopted without a ref is found by its permanent id."""

from __future__ import annotations

from pathlib import Path

import ib_async

from tui_trader.domain import ConnectionState, OrderStatus, OrderType, TimeInForce
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import CLIENT_ID, buy, eventually, make_config, make_engine, running, status

S = OrderStatus


async def _client(sim: SimGateway, client_id: int) -> tuple[ib_async.IB, ib_async.Contract]:
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=client_id, timeout=3)
    contract = ib_async.Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    return ib, contract


async def test_other_clients_execution_with_our_order_id_then_not_booked_against_our_order(
        engine: Engine, sim: SimGateway) -> None:
    # Order ids are each client's own: client 0's market order carrying our working order's id (and a
    # ref of its own) was booked against ours when the position check fetched the executions: ours
    # PARTIALLY_FILLED 7 of 10, while at the broker it still worked with nothing filled.
    limit = round(engine.market.quotes["AAPL"].bid - 5.0, 2)
    ours = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, ours.order_ref) is S.SUBMITTED)
    other, contract = await _client(sim, 0)
    try:
        order = ib_async.MarketOrder("BUY", 7)
        order.orderId, order.orderRef = engine.orders.orders[ours.order_ref].broker_id, "manual-xyz"
        other.placeOrder(contract, order)
        await eventually(lambda: sim.positions().get("AAPL") == 7, what="the other client's order filled")
        await eventually(lambda: any(f.quantity == 7 for f in engine.orders.fills.values()),
                         what="its execution fetched by the position check")
    finally:
        other.disconnect()
    (foreign,) = [f for f in engine.orders.fills.values() if f.quantity == 7]
    assert foreign.order_ref == "manual-xyz"
    mine = engine.orders.orders[ours.order_ref]
    assert (mine.status, mine.filled_quantity) == (S.SUBMITTED, 0)


async def test_order_adopted_without_a_ref_when_cancelled_in_an_outage_then_found_cancelled_not_unknown(
        sim: SimGateway, tmp_path: Path) -> None:
    # Adopted as broker-<permId> (placed on our client id by another tool), cancelled while the engine was
    # out of touch: the completed orders carry no order id and no ref, the permanent id was not compared,
    # and the order went UNKNOWN with entries blocked at every reconciliation after.
    other, contract = await _client(sim, CLIENT_ID)
    trade = other.placeOrder(contract, ib_async.LimitOrder("BUY", 5, round(sim.quote("AAPL").bid - 5, 2)))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    other.disconnect()
    await eventually(lambda: CLIENT_ID not in sim.sessions, what="the other tool gone")
    engine = make_engine(sim, make_config(tmp_path))
    await engine.start()
    try:
        (adopted,) = [o for o in engine.orders.orders.values() if o.order_ref.startswith("broker-")]
        assert adopted.status is S.SUBMITTED
        killer, _ = await _client(sim, 5)
        sim.control.refuse_connections(3600)
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: engine.connection.state is not ConnectionState.CONNECTED)
        killer.reqGlobalCancel()
        await eventually(lambda: not [o for o in sim.orders() if o.working], what="cancelled at the broker")
        killer.disconnect()
        sim.control.refuse_connections(0)
        await eventually(lambda: engine.reconnects >= 1 and "reconciling" not in engine.blocks, what="reconciled")

        assert status(engine, adopted.order_ref) is S.CANCELLED
        assert "unknown_orders" not in engine.blocks
    finally:
        await engine.stop()


async def test_gtc_stop_adopted_from_the_broker_when_modified_then_still_gtc_at_the_broker(
        sim: SimGateway, tmp_path: Path) -> None:
    # An order adopted from the broker was recorded DAY whatever its time in force: a modify sent it back
    # as a DAY order, and a GTC stop placed in another tool to hold a position overnight expired at the close.
    other, contract = await _client(sim, CLIENT_ID)
    stop_price = round(sim.quote("AAPL").bid - 5, 2)
    trade = other.placeOrder(contract, ib_async.StopOrder("SELL", 5, stop_price, tif="GTC"))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    other.disconnect()
    await eventually(lambda: CLIENT_ID not in sim.sessions, what="the other tool gone")
    async with running(sim, make_config(tmp_path)) as (engine, _):
        (adopted,) = [o for o in engine.orders.orders.values() if o.order_ref.startswith("broker-")]
        assert adopted.ticket.tif is TimeInForce.GTC

        verdict = await engine.modify(adopted.order_ref, stop_price=round(stop_price - 1, 2))

        assert verdict.passed
        (at_broker,) = [o for o in sim.orders() if o.perm_id == adopted.perm_id]
        await eventually(lambda: at_broker.aux_price == round(stop_price - 1, 2), what="modified")
        assert at_broker.tif == "GTC"
