"""A bracket's stop modified after its entry is done: the modify names the entry only while the entry works.

IB looks up the parentId of every ``placeOrder``, a modification's too, and refuses one naming an order it no
longer has with 135 "Can't find order with id = <parentId>" (erdewit/ib_insync#647; parentId 0 moved the stop).
An entry that filled on an earlier day, or before the gateway's nightly restart, is such an order: a GTC stop
moved the next day, by the operator or the engine's trailing, was refused on every modify.

IB keeps an order in its OCA group for life, and refuses a modify naming another group, or none, with 10326 "OCA
group revision is not allowed" (nautilus_trader#2978): the stop of a bracket whose target ended before a restart
of tui-trader on a later day (only open orders and the day's finished ones are restored) was modified with no group,
counted from the children in memory.
"""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import Bracket, ConnectionState, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .helpers import (
    below_bid,
    eventually,
    gateway_keeping_state,
    held_at_broker,
    make_config,
    make_engine,
    protected_long,
    running,
    status,
)

S = OrderStatus
A_DAY_AND_A_MINUTE_S = 86_460.0


async def _gateway_restarted_a_day_later(before: SimGateway, clock: ManualClock, state: Path) -> SimGateway:
    """``before`` stopped, then started again on its port with its state a day and a minute later (it has
    forgotten the orders done before, as IB reports only the current day's)."""
    await before.stop()
    clock.advance(A_DAY_AND_A_MINUTE_S)
    after = SimGateway(port=before.port, clock=clock, seed=7, always_open=True, state_path=state)
    await after.start()
    return after


def _parents_named(sim: SimGateway, order_ref: str) -> list[int]:
    """The parentId of each modification of ``order_ref`` the simulator received."""
    return [r.parent_id for r in sim.ledger.received if r.order_ref == order_ref and r.modification]


def _groups_named(sim: SimGateway, order_ref: str) -> list[str]:
    """The OCA group of each modification of ``order_ref`` the simulator received."""
    return [r.oca_group for r in sim.ledger.received if r.order_ref == order_ref and r.modification]


async def test_stop_of_an_entry_filled_before_the_gateways_nightly_restart_then_modified_and_moved_at_the_broker(
        tmp_path: Path) -> None:
    # Arrange: a bracket filled; the gateway restarts with its state a day later; the engine reconnects.
    before, clock, state = await gateway_keeping_state(tmp_path)
    engine = make_engine(before, make_config(tmp_path))
    await engine.start()
    after: SimGateway | None = None
    try:
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
        entry, stop, _ = await protected_long(engine)
        after = await _gateway_restarted_a_day_later(before, clock, state)
        await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED
                         and not engine.blocks, what="reconnected and reconciled")
        assert entry.order_ref not in after.order_refs()  # the gateway no longer has the entry
        assert status(engine, entry.order_ref) is S.FILLED  # the engine still does
        moved = round(stop.ticket.stop_price + 0.5, 2)  # type: ignore[operator]

        # Act: the operator moves the stop up.
        verdict = await engine.modify(stop.order_ref, stop_price=moved)
        await eventually(lambda: not engine.snapshot().modifications, what="the modify answered")

        # Assert: the broker moved it (its modify named no parent), and the engine shows what the broker holds.
        assert verdict.passed, verdict.reason
        assert held_at_broker(after, stop.order_ref) == (10, None, moved)
        assert _parents_named(after, stop.order_ref) == [0]
        assert status(engine, stop.order_ref) is S.SUBMITTED
        assert engine.orders.orders[stop.order_ref].ticket.stop_price == moved
    finally:
        await engine.stop()
        await (after or before).stop()


async def test_stop_of_an_entry_filled_before_both_restarted_then_modified_and_moved_at_the_broker(
        tmp_path: Path) -> None:
    # A restarted engine restores the open orders and the day's finished ones: the entry filled on an earlier day
    # was not in memory, and the modify of its stop failed on the lookup of it (a KeyError) before anything was sent.
    config = make_config(tmp_path)
    before, clock, state = await gateway_keeping_state(tmp_path)
    after: SimGateway | None = None
    try:
        async with running(before, config, clock.now) as (first, _):
            await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
            entry, stop, target = await protected_long(first)
        after = await _gateway_restarted_a_day_later(before, clock, state)

        async with running(after, config, clock.now) as (second, _):
            await eventually(lambda: second.connection.state is ConnectionState.CONNECTED and not second.blocks
                             and "AAPL" in second.market.quotes, what="started and reconciled")
            assert second.orders.get(entry.order_ref) is None
            assert {status(second, stop.order_ref), status(second, target.order_ref)} == {S.SUBMITTED}
            moved = round(stop.ticket.stop_price + 0.5, 2)  # type: ignore[operator]

            verdict = await second.modify(stop.order_ref, stop_price=moved)
            await eventually(lambda: not second.snapshot().modifications, what="the modify answered")

            assert verdict.passed, verdict.reason
            assert held_at_broker(after, stop.order_ref) == (10, None, moved)
            assert _parents_named(after, stop.order_ref) == [0]
            assert second.orders.orders[stop.order_ref].ticket.stop_price == moved
    finally:
        await (after or before).stop()


async def test_stop_resized_with_its_working_entry_then_names_the_entry_and_modified_once_filled_names_none(
        engine: Engine, sim: SimGateway) -> None:
    # While the entry works the link still holds the stop back until the fill and cancels it with the entry: a
    # resize with the entry keeps it. Once the entry is done it has no work left, and IB may no longer have it.
    limit = below_bid(engine, 1.0)
    entry = await engine.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=limit,
                                            bracket=Bracket(stop_price=round(limit - 3, 2))))
    (stop,) = engine.orders.children(entry.order_ref)
    await eventually(lambda: status(engine, entry.order_ref) is S.SUBMITTED
                     and status(engine, stop.order_ref) is S.SUBMITTED, what="entry working, stop held")

    resized = await engine.modify(entry.order_ref, quantity=8)
    await eventually(lambda: not engine.snapshot().modifications, what="the resize answered")
    sim.control.set_price("AAPL", round(limit - 0.5, 2))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="entry filled")
    moved = await engine.modify(stop.order_ref, stop_price=round(limit - 2, 2))
    await eventually(lambda: not engine.snapshot().modifications, what="the stop's modify answered")

    assert resized.passed, resized.reason
    assert moved.passed, moved.reason
    assert _parents_named(sim, stop.order_ref) == [engine.orders.orders[entry.order_ref].broker_id, 0]
    assert held_at_broker(sim, stop.order_ref) == (8, None, round(limit - 2, 2))


async def test_stop_whose_target_was_cancelled_before_a_restart_then_modified_in_its_oca_group_and_moved(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # Arrange: a bracket filled, its target cancelled by the operator; tui-trader restarts the next day (the target,
    # ended on an earlier day, is not restored: the stop looks like an only child).
    config = make_config(tmp_path)
    async with running(sim, config, clock.now) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        entry, stop, target = await protected_long(first)
        await first.cancel(target.order_ref)
        await eventually(lambda: status(first, target.order_ref) is S.CANCELLED, what="the target cancelled")

    clock.advance(A_DAY_AND_A_MINUTE_S)
    async with running(sim, config, clock.now) as (second, _):
        await eventually(lambda: second.connection.state is ConnectionState.CONNECTED and not second.blocks
                         and "AAPL" in second.market.quotes, what="started and reconciled")
        assert second.orders.get(target.order_ref) is None
        moved = round(stop.ticket.stop_price + 0.5, 2)  # type: ignore[operator]

        # Act: the operator moves the stop up.
        verdict = await second.modify(stop.order_ref, stop_price=moved)
        await eventually(lambda: not second.snapshot().modifications, what="the modify answered")

        # Assert: the modify named the group the broker holds the stop in, and the broker moved it.
        assert verdict.passed, verdict.reason
        assert _groups_named(sim, stop.order_ref) == [f"oca-{entry.order_ref}"]
        assert held_at_broker(sim, stop.order_ref) == (10, None, moved)
        (at_sim,) = [o for o in sim.orders() if o.order_ref == stop.order_ref]
        assert (at_sim.oca_group, at_sim.status) == (f"oca-{entry.order_ref}", "Submitted")
        assert status(second, stop.order_ref) is S.SUBMITTED
        assert second.orders.orders[stop.order_ref].ticket.stop_price == moved
