"""Smaller requests and behaviours: account summary, head timestamp, IOC, OCA reduce, determinism,
the real clock, unknown cancels."""

from __future__ import annotations

import math

import ib_async
from ib_async import LimitOrder

from tui_trader.sim import ManualClock, SimGateway

from .helpers import connect, eventually, sync


async def test_account_summary_when_requested_then_tags_with_account(ib: ib_async.IB, sim: SimGateway) -> None:
    summary = await ib.accountSummaryAsync()
    tags = {v.tag: v for v in summary}
    assert float(tags["NetLiquidation"].value) == 1_000_000.0
    assert tags["BuyingPower"].account == sim.account_id


async def test_head_timestamp_when_requested_then_a_year_back(ib: ib_async.IB, aapl: ib_async.Contract) -> None:
    head = await ib.reqHeadTimeStampAsync(aapl, "TRADES", True, 1)
    assert head.year == 2023


async def test_ioc_when_not_marketable_then_cancelled(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, 99.00, tif="IOC"))
    await eventually(lambda: trade.orderStatus.status == "Cancelled")


async def test_oca_reduce_when_one_partially_fills_then_other_reduced(
    ib: ib_async.IB, sim: SimGateway, aapl: ib_async.Contract
) -> None:
    sim.control.set_quote("AAPL", 100.00, 100.02, 300, 300)
    orders = ib.oneCancelsAll([LimitOrder("SELL", 500, 101.00), LimitOrder("SELL", 500, 103.00)], "oca-r", 2)
    trades = [ib.placeOrder(aapl, o) for o in orders]
    await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    sim.control.set_quote("AAPL", 101.05, 101.07, 300, 300)
    await eventually(lambda: trades[0].orderStatus.filled == 300)
    await eventually(lambda: sim.orders()[1].total_qty == 200)
    await eventually(lambda: trades[1].order.totalQuantity == 200)


async def test_market_when_same_seed_then_same_stream_and_different_seed_differs() -> None:
    async def last_after(seed: int) -> float:
        async with SimGateway(port=0, clock=ManualClock(), seed=seed, symbols=["AAPL"]) as gw:
            gw.control.step(120)
            return gw.quote("AAPL").last

    assert await last_after(11) == await last_after(11)
    assert await last_after(11) != await last_after(12)


async def test_real_clock_when_running_then_ticks_stream_without_stepping() -> None:
    async with SimGateway(port=0, speed=20.0, always_open=True, symbols=["SPY"]) as gw:
        ib = await connect(gw)
        (spy,) = await ib.qualifyContractsAsync(ib_async.Stock("SPY", "SMART", "USD"))
        ticker = ib.reqMktData(spy)
        await eventually(lambda: not math.isnan(ticker.last) and ticker.volume > 0)
        first = ticker.time
        await eventually(lambda: ticker.time != first, what="a later tick")
        ib.disconnect()


async def test_cancel_when_order_unknown_then_error_10147(ib: ib_async.IB, aapl: ib_async.Contract) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.client.cancelOrder(424242)
    await sync(ib)
    await eventually(lambda: 10147 in errors)


async def test_control_aliases_when_used_then_same_effect(ib: ib_async.IB, sim: SimGateway) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    sim.control.inject_error(2103)
    await eventually(lambda: 2103 in errors)
    sim.control.disconnect()
    await eventually(lambda: not ib.isConnected())
