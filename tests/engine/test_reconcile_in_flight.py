"""Reconciliation while orders are in flight: an order the broker has not answered yet is not missing.

The soak showed orders sent while a reconciliation was running (one a cancel race asked for)
turn UNKNOWN and block entries: the reconciliation's open-orders answer was already in when the
order went out, so the order was in neither list. These tests send the order at exactly that
moment: the engine's own ``open_orders`` is wrapped so the order is placed after the
open-orders answer and before the reconciliation reads it; the real adapter, ib_async and the
simulator do the rest. The simulator holds the acknowledgement back (simulated time stands
still until the test steps it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain import OrderStatus, OrderType
from tui_trader.domain.orders import Order
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, status

S = OrderStatus
HELD = 30.0  # simulated seconds the acknowledgement is held back


def resting_buy(engine: Engine, qty: float = 5) -> Order:
    """A limit buy well under the market (it rests at the broker), sent without a task hop."""
    limit = round(engine.market.quotes["AAPL"].bid - 5.0, 2)
    return engine.submit_nowait(buy(qty, order_type=OrderType.LMT, limit_price=limit))


def send_during_reconcile(engine: Engine, then: Callable[[Order], Awaitable[None]] | None = None) -> list[Order]:
    """Send one resting order after the reconciliation's open-orders answer; the orders sent."""
    sent: list[Order] = []
    real = engine.broker.open_orders

    async def open_orders() -> list[BrokerOrderReport]:
        answer = await real()
        if not sent:
            sent.append(resting_buy(engine))
            if then is not None:
                await then(sent[0])
        return answer

    engine.broker.open_orders = open_orders  # type: ignore[method-assign]
    return sent


@pytest.mark.parametrize("held", [("order_status",), ("open_order", "order_status")],
                         ids=["status-held", "ack-held"])
async def test_reconcile_when_order_sent_during_it_and_ack_held_back_then_left_in_flight_and_entries_open(
        engine: Engine, sim: SimGateway, held: tuple[str, ...]) -> None:
    for kind in held:
        sim.control.delay_messages(kind, HELD)
    sent = send_during_reconcile(engine)

    await engine.reconcile("cancel race")

    ref = sent[0].order_ref
    assert status(engine, ref) is S.SENDING
    assert "unknown_orders" not in engine.blocks
    sim.control.step(HELD + 1)  # the broker's acknowledgement arrives
    await eventually(lambda: status(engine, ref) is S.SUBMITTED, what="acknowledged")
    assert not engine.blocks
    assert [o.order_ref for o in engine.orders.with_status(S.UNKNOWN)] == []


async def test_reconcile_when_order_acked_after_open_orders_answer_then_found_by_ref_not_unknown(
        engine: Engine, sim: SimGateway) -> None:
    async def acknowledged(order: Order) -> None:
        await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED, what="acknowledged")

    sent = send_during_reconcile(engine, acknowledged)

    await engine.reconcile("cancel race")

    assert status(engine, sent[0].order_ref) is S.SUBMITTED
    assert "unknown_orders" not in engine.blocks


async def test_reconcile_when_unacked_order_past_its_ack_timeout_and_absent_then_not_treated_as_in_flight(
        engine: Engine, sim: SimGateway) -> None:
    sim.control.drop_messages("open_order", -1)
    sim.control.drop_messages("order_status", -1)
    order = resting_buy(engine)
    # The ack watcher gives up: UNKNOWN, entries blocked, a reconciliation asked for. The broker does
    # hold the order (only its acknowledgement was lost), so the reconciliation finds it by orderRef.
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED, timeout=10, what="reconciled")
    assert not engine.blocks


async def test_open_orders_when_requested_concurrently_then_every_caller_gets_the_working_orders(
        engine: Engine, sim: SimGateway) -> None:
    orders = [resting_buy(engine, qty) for qty in (1, 2, 3)]
    refs = {o.order_ref for o in orders}
    await eventually(lambda: all(status(engine, r) is S.SUBMITTED for r in refs), what="all working")

    answers = await asyncio.gather(*(engine.broker.open_orders(all_clients=i % 2 == 1) for i in range(5)),
                                   *(engine.broker.completed_orders() for _ in range(3)))

    for answer in answers[:5]:
        assert refs <= {r.order_ref for r in answer}
    assert all(isinstance(answer, list) for answer in answers[5:])
