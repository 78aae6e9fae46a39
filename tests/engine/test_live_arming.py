"""Live mode: nothing is approved (so nothing is sent) until the operator arms with the typed account id."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.domain import Mode, OrderStatus
from tui_trader.domain.events import OperatorAction
from tui_trader.errors import SafetyError
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, make_config, make_engine, status


async def test_live_when_not_armed_then_approval_refused_and_nothing_reaches_the_gateway(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, mode=Mode.LIVE, approvals_required=True))
        await engine.start()
        try:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
            assert engine.snapshot().armed is False
            order = await engine.submit(buy(5))
            assert status(engine, order.order_ref) is OrderStatus.PENDING_APPROVAL

            with pytest.raises(SafetyError, match="not armed"):
                engine.approve(order.order_ref)
            with pytest.raises(SafetyError, match="not the connected account"):
                engine.arm("U0000000")

            assert gw.order_refs() == []
            assert status(engine, order.order_ref) is OrderStatus.PENDING_APPROVAL
        finally:
            await engine.stop()


async def test_live_when_armed_with_account_id_then_approved_order_is_sent(tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path, mode=Mode.LIVE, approvals_required=True))
        events = engine.subscribe("test")
        await engine.start()
        try:
            await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
            engine.arm(gw.account_id)
            assert engine.snapshot().armed is True
            assert any(isinstance(e, OperatorAction) and e.action == "arm_live" for e in events.drain())

            order = await engine.submit(buy(5))
            engine.approve(order.order_ref)
            await eventually(lambda: order.order_ref in gw.order_refs(), what="the order at the gateway")
        finally:
            await engine.stop()


async def test_live_when_restarted_unarmed_then_a_working_order_cannot_be_modified(tmp_path: Path) -> None:
    # Modify re-placed an order at the broker without the arming every approval needs (the console's new
    # 'e' key made that reachable before the preflight).
    from tui_trader.domain import OrderType

    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as gw:
        config = make_config(tmp_path, mode=Mode.LIVE, approvals_required=True)
        first = make_engine(gw, config)
        await first.start()
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        first.arm(gw.account_id)
        limit = round(first.market.quotes["AAPL"].bid * 0.97, 2)
        order = await first.submit(buy(5, order_type=OrderType.LMT, limit_price=limit))
        first.approve(order.order_ref)
        await eventually(lambda: status(first, order.order_ref) is OrderStatus.SUBMITTED, what="working")
        await first.stop()

        second = make_engine(gw, config)
        await second.start()
        try:
            await eventually(lambda: status(second, order.order_ref) is OrderStatus.SUBMITTED, what="adopted")
            with pytest.raises(SafetyError, match="not armed"):
                await second.modify(order.order_ref, quantity=50)
            assert [o.total_qty for o in gw.orders() if o.order_ref == order.order_ref] == [5]
            second.arm(gw.account_id)
            await second.modify(order.order_ref, quantity=6)
            await eventually(lambda: [o.total_qty for o in gw.orders() if o.order_ref == order.order_ref] == [6],
                             what="modified once armed")
        finally:
            await second.stop()
