"""Modifying a standalone reduce-only exit that already works at the broker beside a bracket's stop.

A NEW standalone exit is measured without its symbol's protective orders: they are cancelled before it is sent
(``send_approved``). A modify of one already working cancels nothing, yet it was measured the same way: the
operator's limit of 5 grown to 10 under a long of 10 "only reduced", while at the broker the bracket's stop of 5
and the limit of 10 both worked: both filling, the long of 10 became a short of 5. A modify of an order placed
is now measured with the symbol's other protective orders (its own order left out).
"""

from __future__ import annotations

from tui_trader.domain import Order, OrderStatus, OrderType
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import below_bid, bracket_buy, buy, eventually, held_at_broker, sell, status

S = OrderStatus
UNKNOWN_BLOCK = ("unknown_orders", "an order's state is unknown; reconciling with the broker")


async def _exit_beside_a_stop(engine: Engine, sim: SimGateway) -> tuple[Order, Order]:
    """Long 10 AAPL: a standalone reduce-only sell limit of 5 (placed under a long of 5, nothing to cancel),
    then a bracket of 5 whose stop of 5 works beside it. Returns (limit, stop)."""
    await engine.submit(buy(5))
    await eventually(lambda: engine.portfolio.quantity("AAPL") == 5, what="long 5")
    limit = await engine.submit(sell(5, order_type=OrderType.LMT, reduce_only=True,
                                     limit_price=round(engine.market.quotes["AAPL"].ask * 1.05, 2)))
    await eventually(lambda: status(engine, limit.order_ref) is S.SUBMITTED, what="exit limit working")
    stop = await bracket_buy(sim, engine, qty=5)
    assert engine.portfolio.quantity("AAPL") == 10
    assert status(engine, limit.order_ref) is S.SUBMITTED
    return engine.orders.orders[limit.order_ref], stop


async def test_standalone_exit_grown_past_flat_beside_a_bracket_stop_then_denied_and_the_broker_keeps_it(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10; the bracket's stop of 5 and the operator's reduce-only limit of 5 work at the broker.
    limit, stop = await _exit_beside_a_stop(engine, sim)

    # Act: the limit grown to 10 (the stop's 5 beside it: 15 could sell against the long of 10).
    grown = await engine.modify(limit.order_ref, quantity=10)

    # Assert: denied by the reduce-only check, nothing sent; both orders at the broker as they were.
    assert not grown.passed
    assert [c.name for c in grown.failures] == ["reduce_only"], grown.reason
    assert "past flat" in grown.reason
    assert held_at_broker(sim, limit.order_ref)[0] == 5
    assert held_at_broker(sim, stop.order_ref)[0] == 5
    # A NEW exit of 10 still passes: the stop is cancelled before it is sent.
    assert engine.preview(sell(10, order_type=OrderType.LMT, reduce_only=True,
                               limit_price=limit.ticket.limit_price)).passed


async def test_standalone_exit_beside_a_bracket_stop_moved_or_cut_then_passes_and_reaches_the_broker(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange
    limit, _ = await _exit_beside_a_stop(engine, sim)
    lowered = round(limit.ticket.limit_price - 0.5, 2)  # type: ignore[operator]

    # Act: its price moved (5 + the stop's 5 still fit the long of 10), then it is cut to 3.
    moved = await engine.modify(limit.order_ref, limit_price=lowered)
    await eventually(lambda: held_at_broker(sim, limit.order_ref) == (5, lowered, None), what="limit moved")
    cut = await engine.modify(limit.order_ref, quantity=3)

    # Assert
    assert moved.passed, moved.reason
    assert cut.passed, cut.reason
    await eventually(lambda: held_at_broker(sim, limit.order_ref) == (3, lowered, None), what="limit cut")


async def test_standalone_exit_grown_past_flat_beside_a_bracket_stop_while_entries_blocked_then_denied(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: as above, and entries blocked (an order in an unknown state): only what reduces passes.
    limit, _ = await _exit_beside_a_stop(engine, sim)
    engine.block(*UNKNOWN_BLOCK)

    # Act
    grown = await engine.modify(limit.order_ref, quantity=10)
    lowered = round(limit.ticket.limit_price - 0.5, 2)  # type: ignore[operator]
    moved = await engine.modify(limit.order_ref, limit_price=lowered)

    # Assert: the engine's block and the gate agree the growth is not reducing; the move is.
    assert [c.name for c in grown.failures] == ["entries_blocked", "reduce_only"]
    assert held_at_broker(sim, limit.order_ref)[0] == 5
    assert moved.passed, moved.reason


async def test_standalone_exit_overselling_with_the_stop_when_cut_or_moved_then_passes(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 10 with the limit of 5 and the stop of 5; a sell of 4 fills: long 6, the two sell 10 between
    # them. Counted beside the stop, a cut of the limit (5 + 5 > 6, and 2 + 5 > 6 still) was refused as "past
    # flat", and the exit stayed larger than it could be. A buy limit rests far below: an entry working no longer
    # stops the fitting (it left the two selling 10 on the 6).
    limit, stop = await _exit_beside_a_stop(engine, sim)
    resting = await engine.submit(buy(1, order_type=OrderType.LMT, limit_price=below_bid(engine, 5.0)))
    await eventually(lambda: status(engine, resting.order_ref) is S.SUBMITTED, what="a buy resting")
    lowered = round(limit.ticket.limit_price - 0.5, 2)  # type: ignore[operator]

    # Act: the sell of 4; the engine fits the two to the 6 left, the stop kept whole; then the limit is moved.
    await engine.submit(sell(4))
    await eventually(lambda: engine.portfolio.quantity("AAPL") == 6, what="long 6")
    await eventually(lambda: held_at_broker(sim, limit.order_ref)[0] == 1, what="limit cut")
    moved = await engine.modify(limit.order_ref, limit_price=lowered)
    regrown = await engine.modify(limit.order_ref, quantity=4)

    # Assert: the cut and the move add nothing to what the broker holds; growing it back past flat beside the
    # stop is still denied.
    assert moved.passed, moved.reason
    await eventually(lambda: held_at_broker(sim, limit.order_ref) == (1, lowered, None), what="limit moved")
    assert not regrown.passed
    assert [c.name for c in regrown.failures] == ["reduce_only"], regrown.reason
    assert held_at_broker(sim, stop.order_ref)[0] == 5
