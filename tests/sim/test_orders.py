"""Orders: market and limit fills, commissions, positions, account values, cancel, modify."""

from __future__ import annotations

import ib_async
from ib_async import LimitOrder, MarketOrder

from tui_trader.sim import ManualClock, SimGateway

from .helpers import connect, eventually, sync


def account_value(ib: ib_async.IB, tag: str) -> float:
    """An account value tag (USD) as the client sees it."""
    values = [v for v in ib.accountValues() if v.tag == tag and v.currency == "USD"]
    return float(values[0].value) if values else float("nan")


async def test_market_buy_when_placed_then_fills_at_ask_with_commission(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 100, orderRef="ref-mkt-1"))
    await eventually(lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.commission > 0)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == 100.02
    fill = trade.fills[0]
    assert fill.execution.side == "BOT"
    assert fill.execution.shares == 100
    assert fill.execution.orderRef == "ref-mkt-1"
    assert fill.commissionReport.commission >= 0.35
    await eventually(lambda: any(p.position == 100 for p in ib.positions()))
    (pos,) = ib.positions()
    assert pos.contract.conId == 265598
    assert pos.avgCost > 100.02  # commission is part of IB's average cost
    await eventually(lambda: any(i.position == 100 for i in ib.portfolio()))
    assert sim.positions() == {"AAPL": 100}


async def test_two_gateways_in_one_process_when_each_takes_an_order_then_their_permanent_ids_differ(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract, clock: ManualClock
) -> None:
    # Every gateway started its permanent ids at the same number: a test's two gateways (a paper and a live account)
    # handed out the same ones, and an engine that met both took one's order for the other's.
    async with SimGateway(port=0, clock=clock, seed=7) as other_gw:
        other = await connect(other_gw)
        try:
            (contract,) = await other.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
            theirs = other.placeOrder(contract, LimitOrder("BUY", 1, 50.00))
            mine = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.00))
            await eventually(lambda: mine.order.permId and theirs.order.permId)
        finally:
            other.disconnect()
    assert mine.order.permId != theirs.order.permId


async def test_market_buy_when_filled_then_account_values_consistent(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    cash0 = account_value(ib, "TotalCashValue")
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 100))
    await eventually(lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.commission > 0)
    commission = trade.fills[0].commissionReport.commission
    expected_cash = cash0 - 100 * 100.02 - commission
    await eventually(lambda: abs(account_value(ib, "TotalCashValue") - expected_cash) < 0.01)
    assert abs(sim.cash - expected_cash) < 1e-6
    net_liq = account_value(ib, "NetLiquidation")
    assert abs(net_liq - (expected_cash + 100 * sim.quote("AAPL").last)) < 0.01
    assert account_value(ib, "BuyingPower") > 0
    assert account_value(ib, "AvailableFunds") < net_liq


async def test_round_trip_when_closed_then_realized_pnl_reported(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    buy = ib.placeOrder(aapl, MarketOrder("BUY", 100))
    await eventually(buy.isDone)
    sim.control.set_quote("AAPL", 101.00, 101.02, 500, 500)
    sell = ib.placeOrder(aapl, MarketOrder("SELL", 100))
    await eventually(lambda: sell.isDone() and sell.fills and sell.fills[0].commissionReport.commission > 0)
    realized = sell.fills[0].commissionReport.realizedPNL
    commissions = buy.fills[0].commissionReport.commission + sell.fills[0].commissionReport.commission
    assert abs(realized - ((101.00 - 100.02) * 100 - commissions)) < 0.01
    await eventually(lambda: not ib.positions() or ib.positions()[0].position == 0)
    assert sim.positions() == {}


async def test_marketable_limit_when_placed_then_fills_at_touch(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 50, 100.50))
    await eventually(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 100.02


async def test_resting_limit_when_market_crosses_then_fills_at_limit(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, LimitOrder("SELL", 50, 100.50, tif="GTC"))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.set_quote("AAPL", 100.60, 100.62, 500, 500)
    await eventually(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 100.50
    assert sim.positions() == {"AAPL": -50}


async def test_cancel_when_working_then_cancelled_and_error_202(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    sim.control.set_quote("AAPL", 100.00, 100.02)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, 90.00))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    await eventually(lambda: trade.orderStatus.status == "Cancelled" and 202 in errors)
    assert sim.orders()[0].status == "Cancelled"


async def test_modify_when_same_order_id_replaced_then_new_price_applies(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    order = LimitOrder("BUY", 10, 90.00)
    trade = ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    order.lmtPrice = 95.00
    order.totalQuantity = 20
    ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.remaining == 20)
    (sim_order,) = sim.orders()
    assert (sim_order.lmt_price, sim_order.total_qty) == (95.0, 20)
    order.lmtPrice = 100.05
    ib.placeOrder(aapl, order)
    await eventually(trade.isDone)
    assert trade.orderStatus.filled == 20


async def test_open_orders_when_requested_then_working_orders_listed(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02)
    ib.placeOrder(aapl, LimitOrder("BUY", 10, 90.00, orderRef="w1"))
    ib.placeOrder(aapl, LimitOrder("BUY", 10, 91.00, orderRef="w2"))
    await sync(ib)
    trades = await ib.reqOpenOrdersAsync()
    assert sorted(t.order.orderRef for t in trades) == ["w1", "w2"]
    all_trades = await ib.reqAllOpenOrdersAsync()
    assert len(all_trades) == 2


async def test_completed_orders_and_executions_when_requested_then_from_ledger(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="done-1"))
    await eventually(trade.isDone)
    completed = await ib.reqCompletedOrdersAsync(apiOnly=False)
    assert [t.order.orderRef for t in completed] == ["done-1"]
    assert completed[0].orderStatus.status == "Filled"
    fills = await ib.reqExecutionsAsync()
    assert [f.execution.orderRef for f in fills] == ["done-1"]
    assert ib.fills()[0].commissionReport.commission > 0
    assert await ib.reqExecutionsAsync(ib_async.ExecutionFilter(symbol="MSFT")) == []
    assert len(await ib.reqExecutionsAsync(ib_async.ExecutionFilter(side="BUY"))) == 1


async def test_order_ref_ledger_when_orders_sent_then_refs_recorded_once(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.00, orderRef="a"))
    ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.00, orderRef="a"))
    ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.00, orderRef="b"))
    await sync(ib)
    assert sim.order_refs() == ["a", "a", "b"]
    assert sim.duplicate_order_refs() == ["a"]


async def test_quote_when_many_orders_cancelled_then_only_live_ones_rechecked_and_they_still_fill(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    gone = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0)) for _ in range(20)]
    await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in gone))
    for trade in gone:
        ib.cancelOrder(trade.order)
    await eventually(lambda: all(t.orderStatus.status == "Cancelled" for t in gone))
    resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, 95.0))
    await eventually(lambda: resting.orderStatus.status == "Submitted")

    live = sim.ledger.live(aapl.conId)  # a quote re-checks these, not the day's every order

    assert [o.order_id for o in live] == [resting.order.orderId]
    sim.control.set_quote("AAPL", 94.90, 94.95, 500, 500)
    await eventually(lambda: resting.orderStatus.status == "Filled")
    assert sim.ledger.live(aapl.conId) == []


async def test_modify_naming_another_oca_group_or_type_then_10326_or_10327_and_the_order_as_it_was(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    # IB keeps an order in its OCA group for life: a modify naming another group, or none, is refused with 10326
    # "OCA group revision is not allowed" (nautilus_trader#2978), one naming its group with another type with 10327
    # "OCA group type revision is not allowed"; the order works on as it was. The simulator took them all.
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *_: errors.append((req_id, code, text))
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    buy = ib.placeOrder(aapl, MarketOrder("BUY", 10))
    await eventually(buy.isDone, what="bought")
    stop = ib_async.StopOrder("SELL", 10, 95.00, tif="GTC", ocaGroup="pair-1", ocaType=2)
    target = LimitOrder("SELL", 10, 110.00, tif="GTC", ocaGroup="pair-1", ocaType=2)
    trades = [ib.placeOrder(aapl, o) for o in (stop, target)]
    await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in trades), what="stop and target working")
    (held,) = [o for o in sim.orders() if o.order_id == stop.orderId]

    def stop_moved(group: str, oca_type: int) -> None:
        """The stop modified to 96 in ``group`` of ``oca_type``, past ib_async's book-keeping of a refused one."""
        ib.client.placeOrder(stop.orderId, aapl, ib_async.StopOrder(
            "SELL", 10, 96.00, tif="GTC", orderId=stop.orderId, ocaGroup=group, ocaType=oca_type))

    for group, oca_type in (("", 0), ("pair-2", 2), ("pair-1", 1)):
        stop_moved(group, oca_type)
        await sync(ib)
    await eventually(lambda: len(errors) == 3, what="the three modifies answered")

    assert errors == [(stop.orderId, 10326, "OCA group revision is not allowed")] * 2 + [
        (stop.orderId, 10327, "OCA group type revision is not allowed")]
    assert (held.aux_price, held.oca_group, held.oca_type, held.status) == (95.00, "pair-1", 2, "Submitted")
    stop_moved("pair-1", 2)
    await eventually(lambda: held.aux_price == 96.00, what="the stop moved in its group")
    assert (held.oca_group, held.oca_type, held.status) == ("pair-1", 2, "Submitted")
    assert len(errors) == 3
