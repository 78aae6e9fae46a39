"""Live mode: nothing is approved (so nothing is sent) until the operator arms with the typed account id."""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import AlertLevel, Mode, OrderStatus
from tui_trader.domain.events import AlertRaised, OperatorAction
from tui_trader.errors import SafetyError
from tui_trader.sim import ManualClock, SimGateway

from .helpers import (
    buy,
    eventually,
    make_config,
    make_engine,
    outside_client,
    protected_long,
    running,
    status,
    working_at_broker,
)


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


async def test_live_when_restarted_unarmed_with_a_stop_larger_than_its_position_then_arming_cuts_it_at_once(
        tmp_path: Path) -> None:
    # A cut is a modify, refused before the arming; the re-check every cut_recheck_s retried it quietly and arming
    # did not, so the stop of 10 stayed over LONG 5 for up to cut_recheck_s after the operator armed.
    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as gw:
        # Arrange: a filled bracket of 10, the engine stopped, 5 sold in TWS; started again, not armed yet.
        config = make_config(tmp_path, mode=Mode.LIVE, approvals_required=True, book_settle_s=0.2,
                             cut_recheck_s=600)
        async with running(gw, config) as (first, _):
            await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
            first.arm(gw.account_id)
            _, stop, target = await protected_long(first, approve=True)
        async with outside_client(gw) as (outsider, contract):
            trade = outsider.placeOrder(contract, ib_async.MarketOrder("SELL", 5))
            await eventually(lambda: trade.orderStatus.status == "Filled", what="sold at the broker")
        async with running(gw, config) as (second, events):
            await eventually(lambda: any(isinstance(e, AlertRaised) and e.alert.level is AlertLevel.CRITICAL
                                         and "not armed" in e.alert.text for e in events.drain()),
                             what="the cut refused: not armed")
            assert working_at_broker(gw) == {stop.order_ref: 10, target.order_ref: 10}

            # Act: the operator arms.
            second.arm(gw.account_id)

            # Assert: cut to the 5 held at once, not cut_recheck_s (600 s) later.
            await eventually(lambda: working_at_broker(gw) == {stop.order_ref: 5, target.order_ref: 5}, timeout=5,
                             what="stop and target cut to 5 at the broker once armed")
