"""A protective order's modification the broker has not answered yet: the positions show the stop it holds.

The position's stop, and how much of the position its stops cover, came from the protective orders'
tickets, which carry a modification's figures from the moment it is sent: a stop moved by the operator,
or cut by the engine to the position after a partial exit, was shown as done before the broker had
confirmed it, and flipped back at a refusal. The snapshot's account now has the figures the broker holds
until its echo confirms the new ones; the risk checks still take the figures asked.
"""

from __future__ import annotations

from tui_trader.domain import OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import REFUSAL, bracket_buy, broker_answers, eventually, held_at_broker, status

S = OrderStatus


def stop_shown(engine: Engine) -> tuple[float | None, float]:
    """The AAPL position's stop in the snapshot, and how much of the position its stops cover there."""
    account = engine.snapshot().account
    return account.positions["AAPL"].stop_price, account.stop_covered("AAPL")


async def test_stop_moved_until_the_broker_echoes_it_then_the_positions_show_the_stop_held_then_the_new_one(
        engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, qty=10)
    old = stop.ticket.stop_price or 0.0
    raised = round(old + 1.0, 2)
    sim.control.delay_messages("open_order", 1.0)  # the echo comes when the simulated clock moves on

    await engine.modify(stop.order_ref, stop_price=raised)

    await eventually(lambda: held_at_broker(sim, stop.order_ref) == (10, None, raised), what="the modify at the broker")
    assert stop.order_ref in engine.snapshot().modifications
    assert stop_shown(engine) == (old, 10)
    # The risk checks take the figures asked (the order's ticket).
    (risk_view,) = [o for o in engine.account_snapshot().working_orders if o.order_ref == stop.order_ref]
    assert risk_view.ticket.stop_price == raised
    await broker_answers(sim, engine, "the echo confirming it")
    assert stop_shown(engine) == (raised, 10)


async def test_stop_moved_and_refused_after_a_wait_then_the_positions_never_show_the_new_stop(
        engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, qty=10)
    old = stop.ticket.stop_price or 0.0
    sim.control.refuse_next_modify(201, REFUSAL)
    sim.control.delay_messages("error", 1.0)

    await engine.modify(stop.order_ref, stop_price=round(old + 1.0, 2))

    await eventually(lambda: [r.order_ref for r in sim.received_orders() if r.modification] == [stop.order_ref],
                     what="sent")
    assert stop_shown(engine) == (old, 10)
    await broker_answers(sim, engine, "the refusal")
    assert stop_shown(engine) == (old, 10)
    assert held_at_broker(sim, stop.order_ref) == (10, None, old)


async def test_stop_made_smaller_until_the_broker_echoes_it_then_it_covers_the_whole_position_as_held(
        engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, qty=10)
    price = stop.ticket.stop_price
    sim.control.delay_messages("open_order", 1.0)

    await engine.modify(stop.order_ref, quantity=6)

    await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 6, what="the modify at the broker")
    assert stop_shown(engine) == (price, 10)
    await broker_answers(sim, engine, "the echo confirming it")
    assert stop_shown(engine) == (price, 6)


async def test_stop_cut_to_the_position_after_a_partial_exit_then_it_covers_what_the_broker_holds_until_it_echoes(
        engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, qty=10)
    sim.control.delay_messages("open_order", 1.0)

    sell = await engine.submit(OrderTicket("AAPL", Side.SELL, 4, OrderType.MKT))

    await eventually(lambda: status(engine, sell.order_ref) is S.FILLED, what="the sell")
    await eventually(lambda: held_at_broker(sim, stop.order_ref)[0] == 6, what="the cut at the broker")
    assert engine.orders.orders[stop.order_ref].ticket.quantity == 6  # the engine's ticket: asked
    assert engine.snapshot().account.stop_covered("AAPL") == 10
    await broker_answers(sim, engine, "the echo confirming it")
    assert engine.snapshot().account.stop_covered("AAPL") == 6
