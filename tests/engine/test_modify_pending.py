"""A modification the broker has not answered yet: the snapshot says what the broker holds and what was asked.

The engine takes a modify's figures as the order's when it sends it (the next modify is checked against
them), and the orders pane drew them at once, as if the broker held them, before it had confirmed or
refused anything. The snapshot now carries the figures the broker still holds until its echo confirms the
new ones (or its refusal leaves the old ones).
"""

from __future__ import annotations

import pytest

from tui_trader.domain import Bracket, OrderStatus, OrderType
from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.engine import Engine
from tui_trader.errors import SafetyError
from tui_trader.sim import SimGateway

from .helpers import (
    REFUSAL,
    broker_answers,
    buy,
    eventually,
    held_at_broker,
    modify_waiting_for_the_journal,
    shown,
    status,
)

S = OrderStatus


def figures(ticket: OrderTicket) -> tuple[float, float | None, float | None]:
    """(quantity, limit, stop) of a ticket."""
    return ticket.quantity, ticket.limit_price, ticket.stop_price


async def resting_limit(engine: Engine, sim: SimGateway) -> tuple[str, float]:
    """A buy limit of 10 three dollars under the bid, working: its ref and limit."""
    limit = round(sim.quote("AAPL").bid - 3.0, 2)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    return order.order_ref, limit


async def test_modify_until_the_broker_echoes_it_then_pending_at_the_figures_held_then_confirmed(
        engine: Engine, sim: SimGateway) -> None:
    ref, limit = await resting_limit(engine, sim)
    new_limit = round(limit + 0.5, 2)
    sim.control.delay_messages("open_order", 1.0)  # the echo comes when the simulated clock moves on

    await engine.modify(ref, quantity=20, limit_price=new_limit)

    await eventually(lambda: held_at_broker(sim, ref) == (20, new_limit, None), what="the modify at the broker")
    pending = engine.snapshot().modifications[ref]
    assert (figures(pending.held), figures(pending.asked)) == ((10, limit, None), (20, new_limit, None))
    await broker_answers(sim, engine, "the echo confirming it")
    assert shown(engine, ref) == (20, new_limit, None)
    assert status(engine, ref) is S.SUBMITTED


async def test_modify_refused_after_a_wait_then_pending_until_the_refusal_then_as_the_broker_holds_it(
        engine: Engine, sim: SimGateway) -> None:
    ref, limit = await resting_limit(engine, sim)
    sim.control.refuse_next_modify(201, REFUSAL)
    sim.control.delay_messages("error", 1.0)

    await engine.modify(ref, quantity=20)

    await eventually(lambda: [r.qty for r in sim.received_orders() if r.modification] == [20], what="sent")
    assert figures(engine.snapshot().modifications[ref].held) == (10, limit, None)
    await broker_answers(sim, engine, "the refusal")
    assert shown(engine, ref) == held_at_broker(sim, ref) == (10, limit, None)


async def test_modify_of_a_bracket_entry_unanswered_then_its_resized_exits_pending_too(
        engine: Engine, sim: SimGateway) -> None:
    bid = sim.quote("AAPL").bid
    bracket = Bracket(stop_price=round(bid - 4, 2), take_profit_price=round(bid + 4, 2))
    entry = await engine.submit(buy(50, order_type=OrderType.LMT, limit_price=round(bid - 1, 2), bracket=bracket))
    family = [entry, *engine.orders.children(entry.order_ref)]
    await eventually(lambda: all(status(engine, o.order_ref) is S.SUBMITTED for o in family))
    sim.control.delay_messages("open_order", 1.0)

    await engine.modify(entry.order_ref, quantity=80)

    pending = engine.snapshot().modifications
    assert {ref: (p.held.quantity, p.asked.quantity) for ref, p in pending.items()} == {
        o.order_ref: (50, 80) for o in family}
    await eventually(lambda: [held_at_broker(sim, o.order_ref)[0] for o in family] == [80, 80, 80],
                     what="the three at the broker")
    await broker_answers(sim, engine, "the echoes confirming all three")
    assert [shown(engine, o.order_ref)[0] for o in family] == [80, 80, 80]


async def test_modify_waiting_for_the_journal_then_pending_and_when_not_sent_then_no_longer(
        engine: Engine, sim: SimGateway) -> None:
    # Amended before the journal's wait, not yet sent: the broker holds the old figures all the more.
    async with modify_waiting_for_the_journal(engine) as (order, limit, modify):
        pending = engine.snapshot().modifications[order.order_ref]
        assert (figures(pending.held), figures(pending.asked)) == ((10, limit, None), (20, limit, None))
        sim.control.set_price("AAPL", limit - 0.5)
        await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled at the old size")
    with pytest.raises(SafetyError, match="became FILLED"):
        await modify

    assert not engine.snapshot().modifications
