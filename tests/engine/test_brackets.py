"""Brackets at the broker (entry + OCA stop and target), partial fills, exits."""

from __future__ import annotations

from tui_trader.domain import Bracket, OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, protected_long, status

S = OrderStatus


async def test_bracket_entry_then_children_work_at_the_broker_and_target_cancels_stop(
        engine: Engine, sim: SimGateway) -> None:
    entry, stop_order, target_order = await protected_long(engine)
    assert {o.order_ref for o in sim.orders() if o.working} >= {stop_order.order_ref, target_order.order_ref}
    # Each order of the family has an ib_async order of its own (the adapter fills a blank made ahead, never twice).
    family = {entry.order_ref, stop_order.order_ref, target_order.order_ref}
    trades = engine.broker.ib.wrapper.trades.values()  # type: ignore[attr-defined]
    assert sorted(t.order.orderRef for t in trades if t.order.orderRef in family) == sorted(family)
    sim.control.set_price("AAPL", target_order.ticket.limit_price + 0.05)
    await eventually(lambda: status(engine, target_order.order_ref) is S.FILLED)
    await eventually(lambda: status(engine, stop_order.order_ref) is S.CANCELLED)
    assert engine.portfolio.quantity("AAPL") == 0
    assert engine.portfolio.realized_gross > 0


async def test_trailing_stop_bracket_then_trail_order_at_the_broker(engine: Engine, sim: SimGateway) -> None:
    px = engine.market.quotes["AAPL"].ask
    entry = await engine.submit(buy(5, bracket=Bracket(stop_price=round(px * 0.99, 2), trail_percent=1.0)))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED)
    (trail,) = engine.orders.children(entry.order_ref)
    await eventually(lambda: status(engine, trail.order_ref) is S.SUBMITTED)
    at_broker = next(o for o in sim.orders() if o.order_ref == trail.order_ref)
    assert at_broker.order_type == "TRAIL"
    position = engine.portfolio.positions["AAPL"]
    assert (position.stop_price, position.stop_trails) == (trail.ticket.stop_price, True)


async def test_partial_fills_accumulate_then_filled_once_each(engine: Engine, sim: SimGateway) -> None:
    quote = engine.market.quotes["AAPL"]
    sim.control.set_quote("AAPL", quote.bid, quote.ask, 100, 30)
    order = await engine.submit(buy(100))
    await eventually(lambda: status(engine, order.order_ref) is S.PARTIALLY_FILLED)
    assert engine.orders.orders[order.order_ref].filled_quantity == 30
    for _ in range(3):
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 100, 30)
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED)
    fills = [f for f in engine.orders.fills.values() if f.order_ref == order.order_ref]
    assert sum(f.quantity for f in fills) == 100
    assert len({f.exec_id for f in fills}) == len(fills)
    assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 100


async def test_position_stop_when_its_protective_orders_are_cancelled_then_the_position_shows_none(
        engine: Engine, sim: SimGateway) -> None:
    # Found in a --sim run: after Ctrl+K cancelled a bracket's stop and target, the positions pane
    # still showed the stop as in force (protection was recorded only after fills).
    _, stop_order, target_order = await protected_long(engine)
    stop, target = stop_order.ticket.stop_price, target_order.ticket.limit_price
    position = engine.portfolio.positions["AAPL"]
    assert (position.stop_price, position.take_profit_price, position.stop_trails) == (stop, target, False)

    await engine.cancel(target_order.order_ref)
    await eventually(lambda: status(engine, target_order.order_ref) is S.CANCELLED)
    position = engine.portfolio.positions["AAPL"]
    assert (position.stop_price, position.take_profit_price) == (stop, None)

    engine.kill("test: cancel everything")
    await eventually(lambda: status(engine, stop_order.order_ref) is S.CANCELLED)
    position = engine.portfolio.positions["AAPL"]
    assert position.quantity == 10
    assert (position.stop_price, position.take_profit_price) == (None, None)
    assert not [o for o in sim.orders() if o.working]


async def test_bracket_target_partly_filled_then_stop_reduced_to_what_is_left_not_cancelled(
        engine: Engine, sim: SimGateway) -> None:
    # The children went out as an OCA group of type 1 ("cancel all remaining with block"): 3 of 10 sold
    # at the target cancelled the whole stop, and the 7 left had only a limit above the market.
    _, stop_order, target_order = await protected_long(engine, 10)
    target = target_order.ticket.limit_price
    sim.control.set_quote("AAPL", target + 0.01, target + 0.03, 3, 100)
    await eventually(lambda: status(engine, target_order.order_ref) is S.PARTIALLY_FILLED)
    sim.control.set_quote("AAPL", target - 0.50, target - 0.48, 100, 100)  # the target stops filling

    at_broker = next(o for o in sim.orders() if o.order_ref == stop_order.order_ref)
    assert at_broker.working
    assert at_broker.remaining == 7
    await eventually(lambda: engine.orders.orders[stop_order.order_ref].remaining == 7,
                     what="the engine's stop at the broker's size")
    assert status(engine, stop_order.order_ref) is S.SUBMITTED
    assert engine.portfolio.quantity("AAPL") == 7
    assert engine.portfolio.positions["AAPL"].stop_price == stop_order.ticket.stop_price
