"""Resubmit after an ambiguous submit (asks the broker for the orderRef first) and modify by id."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus, OrderType
from tui_trader.engine.engine import Engine
from tui_trader.errors import SafetyError
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, make_config, make_engine, status

S = OrderStatus


def below_bid(engine: Engine, by: float = 1.0) -> float:
    """A buy limit that will not fill at once."""
    return round(engine.market.quotes["AAPL"].bid - by, 2)


async def test_resubmit_when_unacknowledged_order_is_at_broker_then_adopted_not_resent(
        sim: SimGateway, tmp_path: Path) -> None:
    engine = make_engine(sim, make_config(tmp_path, ack_timeout_s=60))
    await engine.start()
    await eventually(lambda: "AAPL" in engine.market.quotes)
    sim.control.drop_messages("open_order", 1)  # the acknowledgement is lost on the way back
    sim.control.drop_messages("order_status", 1)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))
    await eventually(lambda: sim.order_refs() == [order.order_ref], what="order reached the broker")
    assert status(engine, order.order_ref) is S.SENDING

    resubmitted = await engine.resubmit(order.order_ref)

    assert resubmitted.status is S.SUBMITTED
    assert sim.order_refs() == [order.order_ref]
    assert sim.duplicate_order_refs() == []
    await engine.stop()


async def test_resubmit_when_broker_lacks_order_then_resent_once_under_same_ref(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first_gw = SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True)
    async with first_gw:
        first = make_engine(first_gw, config)
        await first.start()
        await eventually(lambda: "AAPL" in first.market.quotes)
        order = await first.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(first)))
        await eventually(lambda: status(first, order.order_ref) is S.SUBMITTED)
        await first.stop()
    amnesiac = SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True)  # lost the order
    async with amnesiac:
        second = make_engine(amnesiac, config)
        await second.start()
        assert status(second, order.order_ref) is S.UNKNOWN

        await second.resubmit(order.order_ref)

        await eventually(lambda: status(second, order.order_ref) is S.SUBMITTED, what="resent and acknowledged")
        assert amnesiac.order_refs() == [order.order_ref]
        assert "unknown_orders" not in second.blocks
        await second.stop()


async def test_resubmit_when_order_acknowledged_then_refused(engine: Engine) -> None:
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    with pytest.raises(SafetyError):
        await engine.resubmit(order.order_ref)


async def test_modify_working_limit_then_same_id_new_figures_and_fills_at_them(
        engine: Engine, sim: SimGateway) -> None:
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine, 2.0)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    new_limit = below_bid(engine, 1.0)

    verdict = await engine.modify(order.order_ref, quantity=20, limit_price=new_limit)

    assert verdict.passed
    (at_broker,) = [o for o in sim.orders() if o.order_ref == order.order_ref]
    await eventually(lambda: (at_broker.total_qty, at_broker.lmt_price) == (20, new_limit), what="modified")
    assert [r.modification for r in sim.received_orders()] == [False, True]
    sim.control.set_price("AAPL", new_limit - 0.5)
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled at the new size")
    assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 20
    assert sim.duplicate_order_refs() == []
    trace = await engine.order_trace(order.order_ref)
    assert trace is not None
    assert [s.step for s in trace.steps].count("risk check of a modify") == len(verdict.checks) > 0


async def test_modify_when_risk_denies_then_nothing_sent(engine: Engine, sim: SimGateway) -> None:
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)

    verdict = await engine.modify(order.order_ref, quantity=5_000)

    assert not verdict.passed
    assert "order_quantity" in {c.name for c in verdict.failures}
    assert engine.orders.orders[order.order_ref].ticket.quantity == 10
    assert len(sim.received_orders()) == 1


async def test_modify_when_order_filled_then_refused(engine: Engine) -> None:
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED)
    with pytest.raises(SafetyError):
        await engine.modify(order.order_ref, limit_price=1.0)
