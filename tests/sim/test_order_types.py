"""Stops, stop-limits, trailing stops, partial fills, brackets, OCA, what-if, rejections, sessions."""

from __future__ import annotations

import ib_async
import pytest
from ib_async import LimitOrder, MarketOrder, Order, StopLimitOrder, StopOrder

from tui_trader.sim import SimGateway

from .helpers import connect, eventually, sync


async def test_stop_sell_when_bid_falls_through_then_triggers_and_fills_at_bid(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, StopOrder("SELL", 10, 99.00))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.set_quote("AAPL", 99.50, 99.52, 500, 500)
    await sync(ib)
    assert not trade.isDone()
    sim.control.set_quote("AAPL", 98.90, 98.92, 500, 500)
    await eventually(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 98.90


async def test_stop_limit_buy_when_triggered_above_limit_then_rests_until_limit_reached(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, StopLimitOrder("BUY", 10, 101.10, 101.00))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.set_quote("AAPL", 101.18, 101.20, 500, 500)
    await sync(ib)
    assert not trade.isDone()
    sim.control.set_quote("AAPL", 101.05, 101.08, 500, 500)
    await eventually(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 101.10


@pytest.mark.parametrize(("amount", "percent"), [(1.00, None), (None, 1.0)])
async def test_trailing_stop_when_market_rises_then_falls_then_stop_follows_and_fills(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract, amount: float | None, percent: float | None
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    order = Order(action="SELL", totalQuantity=10, orderType="TRAIL", tif="GTC")
    if amount is not None:
        order.auxPrice = amount
    else:
        order.trailingPercent = percent
    trade = ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.set_quote("AAPL", 110.00, 110.02, 500, 500)
    sim.control.set_quote("AAPL", 109.50, 109.52, 500, 500)
    await sync(ib)
    assert not trade.isDone()
    (sim_order,) = sim.orders()
    expected_stop = 109.00 if amount is not None else 108.90  # 1% of the 110.00 high-water bid
    assert sim_order.trail_stop_price == pytest.approx(expected_stop)
    sim.control.set_quote("AAPL", 108.80, 108.82, 500, 500)
    await eventually(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 108.80


async def test_trailing_stop_when_modified_then_stop_kept_unless_the_modify_sets_it_as_ib_does(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    # Arrange: a sell trailing 1.00 behind the bid, trailed from 99.00 to 104.00.
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    order = Order(action="SELL", totalQuantity=10, orderType="TRAIL", tif="GTC", auxPrice=1.00)
    trade = ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.set_quote("AAPL", 105.00, 105.02, 500, 500)
    await sync(ib)
    (sim_order,) = sim.orders()
    assert sim_order.trail_stop_price == pytest.approx(104.00)

    # Act / Assert: a modify without trailStopPrice keeps the stop where it trailed to.
    order.totalQuantity = 8
    ib.placeOrder(aapl, order)
    await sync(ib)
    assert (sim_order.total_qty, sim_order.trail_stop_price) == (8, pytest.approx(104.00))
    # One that sets it moves it there, looser too, and it stays until the bid passes its high since.
    order.trailStopPrice = 102.00
    ib.placeOrder(aapl, order)
    sim.control.set_quote("AAPL", 104.50, 104.52, 500, 500)
    await sync(ib)
    assert sim_order.trail_stop_price == pytest.approx(102.00)
    sim.control.set_quote("AAPL", 105.50, 105.52, 500, 500)
    await sync(ib)
    assert sim_order.trail_stop_price == pytest.approx(104.50)
    assert not trade.isDone()


async def test_market_order_when_larger_than_displayed_size_then_partial_fills_over_ticks(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 300, 300)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1000))
    await eventually(lambda: trade.orderStatus.filled == 300)
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.remaining == 700
    sim.control.step(5)
    await eventually(trade.isDone, what="filled over several ticks")
    assert len(trade.fills) > 1
    assert sum(f.execution.shares for f in trade.fills) == 1000
    await eventually(lambda: all(f.commissionReport.execId for f in trade.fills))
    total = sum(f.commissionReport.commission for f in trade.fills)
    assert total == pytest.approx(sim.orders()[0].commission)


async def test_slippage_when_configured_then_market_buy_pays_beyond_ask(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_slippage(2)
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
    await eventually(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 100.04


async def test_bracket_when_parent_fills_then_children_work_and_one_fill_cancels_other(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    parent, take, stop = ib.bracketOrder("BUY", 10, 99.00, 105.00, 95.00)
    trades = [ib.placeOrder(aapl, o) for o in (parent, take, stop)]
    await eventually(lambda: trades[0].orderStatus.status == "Submitted")
    await eventually(lambda: all(t.orderStatus.status == "PreSubmitted" for t in trades[1:]))
    sim.control.set_quote("AAPL", 98.90, 98.92, 500, 500)
    await eventually(lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    sim.control.set_quote("AAPL", 105.10, 105.12, 500, 500)
    await eventually(lambda: trades[1].isDone() and trades[2].isDone())
    assert trades[1].orderStatus.status == "Filled"
    assert trades[2].orderStatus.status == "Cancelled"
    assert sim.positions() == {}


async def test_bracket_when_parent_cancelled_then_children_cancelled(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    parent, take, stop = ib.bracketOrder("BUY", 10, 99.00, 105.00, 95.00)
    trades = [ib.placeOrder(aapl, o) for o in (parent, take, stop)]
    await eventually(lambda: trades[2].orderStatus.status == "PreSubmitted")
    ib.cancelOrder(parent)
    await eventually(lambda: all(t.orderStatus.status == "Cancelled" for t in trades))


async def test_untransmitted_order_when_not_transmitted_then_not_working(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    order = LimitOrder("BUY", 10, 99.00, transmit=False)
    trade = ib.placeOrder(aapl, order)
    await sync(ib)
    assert trade.orderStatus.status == "PendingSubmit"
    assert sim.engine.active_orders() == []


async def test_oca_when_one_fills_then_others_cancelled(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    orders = ib.oneCancelsAll([LimitOrder("SELL", 10, 101.00), LimitOrder("SELL", 10, 102.00)], "oca-1", 1)
    trades = [ib.placeOrder(aapl, o) for o in orders]
    await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    sim.control.set_quote("AAPL", 101.05, 101.07, 500, 500)
    await eventually(lambda: trades[0].isDone() and trades[1].isDone())
    assert [t.orderStatus.status for t in trades] == ["Filled", "Cancelled"]


async def test_what_if_when_requested_then_margin_and_commission_without_order(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    state = await ib.whatIfOrderAsync(aapl, MarketOrder("BUY", 100))
    assert float(state.initMarginChange) == pytest.approx(0.25 * 100 * 100.02, abs=0.01)
    assert state.commission >= 0.35
    assert sim.orders() == []


@pytest.mark.parametrize(("make", "code"), [
    (lambda: LimitOrder("BUY", 0, 100.00), 201),
    (lambda: LimitOrder("BUY", 10, 100.005), 110),
    (lambda: MarketOrder("BUY", 1_000_000), 201),
    (lambda: Order(action="BUY", totalQuantity=1, orderType="MOC"), 201),
])
async def test_place_when_invalid_then_rejected_with_ib_code(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract, make: object, code: int
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    trade = ib.placeOrder(aapl, make())  # type: ignore[operator]
    await eventually(lambda: code in errors)
    await eventually(lambda: trade.orderStatus.status == "Cancelled")
    assert sim.orders() == []


async def test_place_when_symbol_unknown_then_error_200(ib: ib_async.IB, sim: SimGateway) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    contract = ib_async.Stock("NOPE", "SMART", "USD")
    trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
    await eventually(lambda: 200 in errors and trade.orderStatus.status == "Cancelled")


async def test_place_when_symbol_halted_then_rejected_and_no_fills(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, 50.00))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    sim.control.halt("AAPL")
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    rejected = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await eventually(lambda: 201 in errors and rejected.orderStatus.status == "Cancelled")
    sim.control.set_quote("AAPL", 49.00, 49.02)
    await sync(ib)
    assert not trade.isDone()
    sim.control.resume("AAPL")
    sim.control.set_quote("AAPL", 49.00, 49.02)
    await eventually(trade.isDone)


async def test_place_when_order_id_reused_then_error_103(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    order = LimitOrder("BUY", 10, 99.00)
    trade = ib.placeOrder(aapl, order)
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(order)
    await eventually(lambda: trade.orderStatus.status == "Cancelled")
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, *_: errors.append(c)
    ib.client.placeOrder(order.orderId, aapl, order)
    await eventually(lambda: 103 in errors)


async def test_global_cancel_when_several_sessions_then_every_order_cancelled(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    other = await connect(sim, client_id=8)
    (msft,) = await other.qualifyContractsAsync(ib_async.Stock("MSFT", "SMART", "USD"))
    mine = ib.placeOrder(aapl, LimitOrder("BUY", 10, 50.00))
    theirs = other.placeOrder(msft, LimitOrder("BUY", 10, 50.00))
    await eventually(lambda: mine.orderStatus.status == theirs.orderStatus.status == "Submitted")
    ib.reqGlobalCancel()
    await eventually(lambda: mine.orderStatus.status == theirs.orderStatus.status == "Cancelled")
    assert all(o.status == "Cancelled" for o in sim.orders())
    other.disconnect()


async def test_master_client_when_other_client_trades_then_sees_its_orders_and_fills(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    master = await connect(sim, client_id=0)
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="seen-by-0"))
    await eventually(trade.isDone)
    await eventually(lambda: any(t.order.orderRef == "seen-by-0" and t.isDone() for t in master.trades()))
    await eventually(lambda: len(master.fills()) == 1)
    assert master.positions()[0].position == 10
    master.disconnect()
