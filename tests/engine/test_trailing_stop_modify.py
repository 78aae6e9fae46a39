"""A modify of a trailing stop that does not move its stop leaves it where it trailed to at the broker.

IB moves a trailing stop in the position's favour without telling the client: the ticket's stop is where the
order started. Each modify re-sent it as ``trailStopPrice``, so a quantity-only modify (the operator's, or the
engine's cut of a bracket's stop to a smaller position) set the stop back there, looser: more loss if it
triggered.
"""

from __future__ import annotations

import pytest

from tui_trader.domain import Bracket, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import REFUSAL, eventually, status

S = OrderStatus


def _trail_at_broker(sim: SimGateway, order_ref: str) -> tuple[float, float | None]:
    """(quantity, stop) of the trailing stop as the simulated broker holds it."""
    (held,) = [o for o in sim.orders() if o.order_ref == order_ref]
    return held.total_qty, held.trail_stop_price


async def _trailed_to_104(engine: Engine, sim: SimGateway, quantity: int = 10) -> Order:
    """A long ``quantity`` with a stop trailing 1.00 behind the bid, started at 99.00 and trailed to 104.00."""
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 500)
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, quantity, OrderType.MKT,
                                            bracket=Bracket(stop_price=99.00, trail_amount=1.00)))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="entry filled")
    (trail,) = engine.orders.children(entry.order_ref)
    await eventually(lambda: status(engine, trail.order_ref) is S.SUBMITTED, what="trailing stop working")
    sim.control.set_quote("AAPL", 105.00, 105.02, 500, 500)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (quantity, 104.00), what="stop trailed to 104")
    return trail


async def test_trailing_stop_when_trailed_up_then_cut_and_modified_in_quantity_then_its_stop_stays_where_it_trailed(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 100 with a stop trailing 1.00 behind the bid, started at 99.00; the bid rises to 105.
    trail = await _trailed_to_104(engine, sim, 100)
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
    trail = await _trailed_to_104(engine, sim)

    # Act: the operator sets the stop to 104.50, then modifies the quantity only.
    assert (await engine.modify(trail.order_ref, stop_price=104.50)).passed
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (10, 104.50), what="the stop at 104.50")
    assert (await engine.modify(trail.order_ref, quantity=8)).passed
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref)[0] == 8, what="the stop modified to 8")

    # Assert: the stop set on purpose held through the quantity-only modify, and trails on from there.
    assert _trail_at_broker(sim, trail.order_ref) == (8, 104.50)
    sim.control.set_quote("AAPL", 106.00, 106.02, 500, 500)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (8, 105.00), what="trailed on to 105")


@pytest.mark.parametrize(("code", "text"), [
    (201, REFUSAL),  # ib_async marks the trade Cancelled: the adapter puts it back
    (2102, "Unable to modify this order as it is still being processed."),  # ib_async takes it for a warning
], ids=["rejected", "still-processing"])
async def test_trailing_stop_when_a_change_of_its_stop_is_refused_then_later_modifies_leave_it_where_it_trailed(
        engine: Engine, sim: SimGateway, code: int, text: str) -> None:
    # Arrange: the stop trailed to 104.00; the broker refuses the operator's move of it to 104.50.
    trail = await _trailed_to_104(engine, sim)
    sim.control.refuse_next_modify(code, text, order_ref=trail.order_ref)
    assert (await engine.modify(trail.order_ref, stop_price=104.50)).passed
    await eventually(lambda: engine.orders.orders[trail.order_ref].ticket.stop_price == 99.00,
                     what="the ticket back to its stop as before")

    # Act: two quantity-only modifies.
    for quantity in (8, 6):
        assert (await engine.modify(trail.order_ref, quantity=quantity)).passed
        await eventually(lambda q=quantity: _trail_at_broker(sim, trail.order_ref)[0] == q,
                         what=f"modified to {quantity}")

    # Assert: neither sent a stop; the broker's stays where it trailed to (the refused one was never recorded as
    # set, so the ticket's 99.00 was not taken for a change and sent back over it).
    assert _trail_at_broker(sim, trail.order_ref) == (6, 104.00)
    assert engine.orders.orders[trail.order_ref].status is S.SUBMITTED


async def test_trailing_stop_when_its_stop_change_is_taken_then_the_next_modify_compares_with_it(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: the stop trailed to 104.00, moved to 104.50 on purpose (taken), then trailed on to 105.00.
    trail = await _trailed_to_104(engine, sim)
    assert (await engine.modify(trail.order_ref, stop_price=104.50)).passed
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (10, 104.50), what="the stop at 104.50")
    sim.control.set_quote("AAPL", 106.00, 106.02, 500, 500)
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref) == (10, 105.00), what="trailed on to 105")

    # Act: a quantity-only modify after the broker's echo of the stop set.
    await engine.modification_answered(trail.order_ref, 2.0)
    assert (await engine.modify(trail.order_ref, quantity=7)).passed
    await eventually(lambda: _trail_at_broker(sim, trail.order_ref)[0] == 7, what="modified to 7")

    # Assert: the stop taken is the record: the ticket's 104.50 is no change, and IB's 105.00 stands.
    assert _trail_at_broker(sim, trail.order_ref) == (7, 105.00)
