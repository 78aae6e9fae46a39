"""Exchange hours: DAY orders expire at the close; outsideRth decides whether orders fill after hours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import ib_async
import pytest
from ib_async import LimitOrder

from tui_trader.sim import ManualClock, SimGateway

from .helpers import connect, eventually, sync


@pytest.fixture
async def late(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SimGateway, ib_async.IB]]:
    """A simulator whose clock starts at the given UTC time on 2024-03-05 (New York is UTC-5)."""
    hour, minute = request.param
    async with SimGateway(port=0, clock=ManualClock(datetime(2024, 3, 5, hour, minute, tzinfo=UTC)),
                          symbols=["AAPL"]) as gw:
        ib = await connect(gw)
        yield gw, ib
        ib.disconnect()


@pytest.mark.parametrize("late", [(20, 59)], indirect=True)
async def test_day_order_when_session_closes_then_expires_and_gtc_stays(
    late: tuple[SimGateway, ib_async.IB],
) -> None:
    sim, ib = late
    (aapl,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    day = ib.placeOrder(aapl, LimitOrder("BUY", 1, 10.00, tif="DAY"))
    gtc = ib.placeOrder(aapl, LimitOrder("BUY", 1, 10.00, tif="GTC"))
    await eventually(lambda: gtc.orderStatus.status == "Submitted")
    sim.control.step(90)
    await eventually(lambda: day.orderStatus.status == "Cancelled")
    assert gtc.orderStatus.status == "Submitted"


@pytest.mark.parametrize("late", [(21, 30)], indirect=True)
async def test_outside_rth_when_after_close_then_only_outside_rth_orders_fill(
    late: tuple[SimGateway, ib_async.IB],
) -> None:
    sim, ib = late
    (aapl,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    regular = ib.placeOrder(aapl, LimitOrder("BUY", 1, 100.05, tif="GTC"))
    extended = ib.placeOrder(aapl, LimitOrder("BUY", 1, 100.05, tif="GTC", outsideRth=True))
    await eventually(extended.isDone)
    await sync(ib)
    assert regular.orderStatus.status == "Submitted"
