"""The adapter's account is the one the gateway reports, and a connection that refuses orders writes none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tui_trader.broker.base import OrdersRefused
from tui_trader.broker.ib.adapter import IbBroker, connected_account
from tui_trader.domain import OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.orders import OrderManager
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.protocol.ids import Out

ORDER_MESSAGES = {str(int(Out.PLACE_ORDER)), str(int(Out.CANCEL_ORDER)), str(int(Out.REQ_GLOBAL_CANCEL))}


@pytest.mark.parametrize(("configured", "managed", "expected"), [
    ("", ["DU111"], "DU111"),
    ("DU222", ["DU111", "DU222"], "DU222"),
    ("DU1234567", ["USIM0001"], "USIM0001"),  # never the configured id the gateway did not report
    ("DU1234567", [], ""),
])
def test_connected_account_is_one_the_gateway_reported(configured: str, managed: list[str], expected: str) -> None:
    assert connected_account(configured, managed) == expected


@pytest.fixture
async def live() -> AsyncIterator[SimGateway]:
    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as gw:
        yield gw


async def test_configured_account_the_gateway_does_not_manage_then_the_gateways_is_the_account_in_use(
        live: SimGateway) -> None:
    broker = IbBroker(live.host, live.port, 21, account="DU1234567", timeout=3.0)
    await broker.connect()
    try:
        assert broker.account_id == "USIM0001"
        assert broker.managed_accounts() == ["USIM0001"]
        assert broker.account_values(), "the gateway's account values, read for the account in use"
    finally:
        broker.disconnect()


async def test_orders_refused_then_place_cancel_and_global_cancel_raise_and_nothing_is_written(
        live: SimGateway) -> None:
    broker = IbBroker(live.host, live.port, 22, timeout=3.0)
    await broker.connect()
    try:
        order = OrderManager().create(OrderTicket("AAPL", Side.BUY, 1, OrderType.MKT), OrderStatus.SENDING,
                                      datetime.now(UTC))
        live.received_frames.clear()
        broker.refuse_orders("--paper but account USIM0001 is not a paper account")
        with pytest.raises(OrdersRefused, match="not sent: --paper but account USIM0001"):
            broker.place(order, broker.next_order_id())
        with pytest.raises(OrdersRefused):
            broker.cancel(1)
        with pytest.raises(OrdersRefused):
            broker.global_cancel()
        await broker.current_time()  # a round trip: whatever was written before it has been read
        assert [f for _, f in live.received_frames if f[0] in ORDER_MESSAGES] == []
        assert live.order_refs() == []
    finally:
        broker.disconnect()
