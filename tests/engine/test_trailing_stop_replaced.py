"""A bracket's trailing stop placed again for the part held of an entry cancelled after a part filled.

The broker cancels a bracket's stop with its entry, and the engine places the stop again for the part held
(:meth:`~tui_trader.engine.protection.Protection._stop_lost`). A trailing stop went out again at its ticket's
stop, where it started: IB trails a stop without a word, so the one cancelled may have stood tighter, and the
one placed again gave that back (from the price at the time only). It now starts where the prices the engine
saw since the entry's first fill would have trailed it, by IB's rule.
"""

from __future__ import annotations

from tui_trader.domain import Bracket, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import eventually, status

S = OrderStatus


def _working_trails(sim: SimGateway) -> list[tuple[str, float, float | None]]:
    """(action, quantity, stop) of each trailing stop working at the simulated broker."""
    return [(o.action, o.total_qty, o.trail_stop_price) for o in sim.orders() if o.working and o.order_type == "TRAIL"]


async def test_trailing_stop_when_its_entry_is_cancelled_after_a_part_filled_then_placed_again_where_it_trailed(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: 30 of a 100 buy filled at 100.02, its stop to trail 1.00 behind the bid from 99.00; the bid has
    # been up to 105.00 since, and is back at 104.50.
    events = engine.subscribe("test-alerts")
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 30)  # 30 offered at the limit
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.LMT, limit_price=100.02,
                                            bracket=Bracket(stop_price=99.00, trail_amount=1.00)))
    await eventually(lambda: status(engine, entry.order_ref) is S.PARTIALLY_FILLED, what="30 filled")
    for bid in (103.00, 105.00, 104.50):
        sim.control.set_quote("AAPL", bid, round(bid + 0.02, 2), 500, 500)
        await eventually(lambda b=bid: engine.market.quotes["AAPL"].bid == b, what=f"the engine saw {bid}")

    # Act: the operator cancels the entry; the broker cancels its trailing stop with it.
    await engine.cancel(entry.order_ref)

    # Assert: the stop placed again for the 30 starts at 104.00 (105.00 less the trail), not back at 99.00,
    # which the broker would have trailed from the bid now only, to 103.50.
    await eventually(lambda: _working_trails(sim) == [("SELL", 30, 104.00)], what="a trailing stop for the 30")
    (placed,) = engine.protection_working("AAPL")
    assert (placed.ticket.stop_price, placed.ticket.trail_amount) == (104.00, 1.00)
    assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
            and e.alert.kind == "protection_replaced"] == [
        f"{entry.order_ref} was cancelled with 30 of 100 filled; the broker cancelled its stop with it: placed again "
        f"for 30 AAPL as {placed.order_ref}; its trailing stop starts at 104, where the prices seen since the fill "
        "trailed it from 99"]


async def test_trailing_stop_when_its_entry_is_cancelled_before_the_price_moved_then_placed_again_at_its_start(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: 30 of 100 filled; the bid has not been past 100.00 (its stop's start plus the trail) since.
    sim.control.set_quote("AAPL", 100.00, 100.02, 500, 30)
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.LMT, limit_price=100.02,
                                            bracket=Bracket(stop_price=99.00, trail_amount=1.00)))
    await eventually(lambda: status(engine, entry.order_ref) is S.PARTIALLY_FILLED, what="30 filled")
    sim.control.set_quote("AAPL", 99.80, 100.03, 500, 500)
    await eventually(lambda: engine.market.quotes["AAPL"].bid == 99.80, what="the engine saw 99.80")

    # Act
    await engine.cancel(entry.order_ref)

    # Assert: it starts where the bracket's did.
    await eventually(lambda: _working_trails(sim) == [("SELL", 30, 99.00)], what="a trailing stop for the 30")
