"""A modify of a trailing stop that does not move its stop leaves it where it trailed to at the broker.

IB moves a trailing stop in the position's favour without telling the client: the ticket's stop is where the
order started. Each modify re-sent it as ``trailStopPrice``, so a quantity-only modify (the operator's, or the
engine's cut of a bracket's stop to a smaller position) set the stop back there, looser: more loss if it
triggered.
"""

from __future__ import annotations

from tui_trader.domain import Bracket, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import eventually, status

S = OrderStatus


def _trail_at_broker(sim: SimGateway, order_ref: str) -> tuple[float, float | None]:
    """(quantity, stop) of the trailing stop as the simulated broker holds it."""
    (held,) = [o for o in sim.orders() if o.order_ref == order_ref]
    return held.total_qty, held.trail_stop_price


async def test_trailing_stop_when_trailed_up_then_cut_and_modified_in_quantity_then_its_stop_stays_where_it_trailed(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 100 with a stop trailing 1.00 behind the bid, started at 99.00; the bid rises to 105.
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.MKT,
                                            bracket=Bracket(stop_price=99.00, trail_amount=1.00)))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="entry filled")
    (trail,) = engine.orders.children(entry.order_ref)
    await eventually(lambda: status(engine, trail.order_ref) is S.SUBMITTED, what="trailing stop working")
    sim.control.set_quote("AAPL", 105.00, 105.02, 500, 500)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (100, 104.00), what="stop trailed to 104")
    assert engine.orders.orders[trail.order_ref].ticket.stop_price == 99.00  # the ticket does not know

    # Act: a sell of 30 fills (the engine cuts the stop to the 70 held), then the operator modifies it to 50.
    sold = await engine.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.MKT))
    await eventually(lambda: status(engine, sold.order_ref) is S.FILLED, what="the sell filled")
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref)[0] == 70, what="the stop cut to 70")
    cut = _trail_at_broker(sim, trail.order_ref)
    verdict = await engine.modify(trail.order_ref, quantity=50)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref)[0] == 50, what="the stop modified to 50")

    # Assert: the stop stayed where it trailed to through both modifies.
    assert verdict.passed, verdict.reason
    assert cut == (70, 104.00)
    assert _trail_at_broker(sim, trail.order_ref) == (50, 104.00)
    received = [r for r in sim.ledger.received if r.order_ref == trail.order_ref]
    assert [(r.qty, r.modification) for r in received] == [(100, False), (70, True), (50, True)]


async def test_trailing_stop_when_its_stop_is_modified_on_purpose_then_the_broker_moves_it_there(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: a trailing stop trailed to 104.00.
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT,
                                            bracket=Bracket(stop_price=99.00, trail_amount=1.00)))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="entry filled")
    (trail,) = engine.orders.children(entry.order_ref)
    await eventually(lambda: status(engine, trail.order_ref) is S.SUBMITTED, what="trailing stop working")
    sim.control.set_quote("AAPL", 105.00, 105.02, 500, 500)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (10, 104.00), what="stop trailed to 104")

    # Act: the operator sets the stop to 104.50, then modifies the quantity only.
    assert (await engine.modify(trail.order_ref, stop_price=104.50)).passed
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (10, 104.50), what="the stop at 104.50")
    assert (await engine.modify(trail.order_ref, quantity=8)).passed
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref)[0] == 8, what="the stop modified to 8")

    # Assert: the stop set on purpose held through the quantity-only modify, and trails on from there.
    assert _trail_at_broker(sim, trail.order_ref) == (8, 104.50)
    sim.control.set_quote("AAPL", 106.00, 106.02, 500, 500)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (8, 105.00), what="trailed on to 105")
