"""The risk gate while a modification of a working order is unanswered: each such order counts at the larger
of the figures the broker holds and those asked.

The engine's ticket carries the figures asked from the moment a modify is sent, and the gate counted them:
for a modify that shrinks an order (an entry 8 -> 5, a stop 10 -> 6) the broker can still fill it at the
size it holds until it takes the change, yet another order checked meanwhile was judged against the smaller
size (a position limit judged low, an order judged reduce-only that, with the stop held, goes past flat).
"""

from __future__ import annotations

import pytest

from tui_trader.domain import OrderStatus, OrderType, TradingState
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import (
    below_bid,
    bracket_buy,
    broker_answers,
    buy,
    eventually,
    held_at_broker,
    limits_for_tests,
    sell,
    status,
)

S = OrderStatus
POSITION_CAP = pytest.mark.parametrize("engine_changes", [{"limits": limits_for_tests(max_position_quantity=10)}],
                                       ids=["position-cap-10"])


@POSITION_CAP
async def test_entry_shrunk_unanswered_then_an_order_fitting_only_the_asked_size_denied_until_the_echo(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: a buy limit of 8 resting; its cut to 5 sent, the broker's echo delayed.
    limit = below_bid(engine, 3.0)
    entry = await engine.submit(buy(8, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, entry.order_ref) is S.SUBMITTED)
    sim.control.delay_messages("open_order", 1.0)
    assert (await engine.modify(entry.order_ref, quantity=5)).passed
    await eventually(lambda: held_at_broker(sim, entry.order_ref)[0] == 5, what="the modify at the broker")
    assert entry.order_ref in engine.snapshot().modifications
    second = buy(4, order_type=OrderType.LMT, limit_price=limit)  # 5 + 4 fit under 10; 8 + 4 do not

    # Act: the second order, while the broker has not answered.
    denied = await engine.submit(second)

    # Assert: denied on the size the broker may still fill (8), not the one asked (5); nothing sent.
    assert status(engine, denied.order_ref) is S.REJECTED
    check = engine.preview(second).check("position_quantity")
    assert check is not None
    assert (check.passed, check.value) == (False, 12)
    assert not [o for o in sim.orders() if o.order_ref == denied.order_ref]
    await broker_answers(sim, engine, "the echo confirming the cut")
    assert engine.preview(second).passed
    passed = await engine.submit(second)
    await eventually(lambda: status(engine, passed.order_ref) is S.SUBMITTED, what="the second order working")


async def test_stop_cut_unanswered_then_a_sell_that_reduces_only_under_the_asked_stop_denied_while_reducing(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10 with its stop of 10; the stop cut to 6, the echo delayed; trading REDUCING.
    stop = await bracket_buy(sim, engine, qty=10)
    sim.control.delay_messages("open_order", 1.0)
    assert (await engine.modify(stop.order_ref, quantity=6)).passed
    await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 6, what="the cut at the broker")
    engine.reduce_only(True, "test")
    assert engine.trading_state is TradingState.REDUCING

    # Act: a sell of 4 reduces the long only beside a stop of 6; beside the 10 the broker may still fill, it
    # takes the position short.
    verdict = engine.preview(sell(4))

    # Assert
    state = verdict.check("trading_state")
    assert not verdict.passed
    assert state is not None
    assert not state.passed
    await broker_answers(sim, engine, "the echo confirming the cut")
    assert engine.preview(sell(4)).passed
