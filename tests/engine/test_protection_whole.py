"""A symbol's protective orders fitted to its position together after it shrinks: the newest give way first.

Each protective order was cut to the position on its own. Two brackets of 10 (LONG 20), then a sell of 15: all
four children stayed at 10, each cut refused by the gate's reduce-only judgement (the other bracket counted beside
it), said CRITICAL; the two stops would have sold 20 against LONG 5. Two adopted stops of 5, not linked, under
LONG 10, then a sell of 5: each fitted the 5 left on its own, and together they would have sold 10. Now an OCA
group counts once at its largest order, orders not linked add up, and the newest groups are cut, or cancelled
when nothing of the position is left for them, so that the oldest protection stays whole. Real engine against
the simulator over loopback.
"""

from __future__ import annotations

from pathlib import Path

import ib_async

from tui_trader.domain import AlertLevel, Order, OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.risk.limits import TriggerAction
from tui_trader.sim import SimGateway

from .helpers import (
    eventually,
    fall_through,
    limits_for_tests,
    make_config,
    outside_client,
    placed_by_another_tool,
    protected_long,
    protection_said,
    running,
    sell,
    status,
    working_at_broker,
)

S = OrderStatus


async def _two_brackets(sim: SimGateway, engine: Engine) -> tuple[tuple[Order, Order], tuple[Order, Order]]:
    """LONG 20 AAPL from two brackets of 10, each with its stop and target working: (the older bracket's stop and
    target, the newer's)."""
    await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
    quote = sim.quote("AAPL")
    sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
    _, old_stop, old_target = await protected_long(engine)
    _, new_stop, new_target = await protected_long(engine)
    return (old_stop, old_target), (new_stop, new_target)


async def test_two_brackets_when_a_sell_leaves_less_than_one_then_the_newer_cancelled_the_older_cut_and_a_fall_flat(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        (old_stop, old_target), (new_stop, new_target) = await _two_brackets(sim, engine)
        events.drain()

        # Act: a ticket sells 15 of the 20: LONG 5.
        ticket = await engine.submit(sell(15))
        await eventually(lambda: status(engine, ticket.order_ref) is S.FILLED, what="the sell of 15")

        # Assert: the newer bracket gives way (nothing of the position is left for it), the older is cut to the 5.
        await eventually(lambda: working_at_broker(sim) == {old_stop.order_ref: 5, old_target.order_ref: 5},
                         what="the older bracket cut to 5, the newer cancelled")
        assert {status(engine, new_stop.order_ref), status(engine, new_target.order_ref)} == {S.CANCELLED}
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"AAPL protection fitted to LONG 5 (it would have closed 20), the newest giving way first: "
            f"{old_stop.order_ref} (STP 10 AAPL) and {old_target.order_ref} (LMT 10 AAPL) cut to 5; "
            f"{new_stop.order_ref} (STP 10 AAPL) and {new_target.order_ref} (LMT 10 AAPL) cancelled"))]

        # Then: the price falls through the stop: flat, not short.
        await fall_through(sim, engine, old_stop)
        assert sim.positions().get("AAPL", 0) == 0 == engine.portfolio.quantity("AAPL")


async def test_two_brackets_when_a_sell_leaves_more_than_one_then_the_older_whole_the_newer_cut_and_a_fall_flat(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        (old_stop, old_target), (new_stop, new_target) = await _two_brackets(sim, engine)
        events.drain()

        ticket = await engine.submit(sell(5))
        await eventually(lambda: status(engine, ticket.order_ref) is S.FILLED, what="the sell of 5")

        # Assert: the stops total the 15 held; the older bracket untouched (never modified).
        await eventually(lambda: working_at_broker(sim) == {old_stop.order_ref: 10, old_target.order_ref: 10,
                                                     new_stop.order_ref: 5, new_target.order_ref: 5},
                         what="the newer bracket cut to 5")
        assert not [r for r in sim.received_orders()
                    if r.modification and r.order_ref in (old_stop.order_ref, old_target.order_ref)]
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"AAPL protection fitted to LONG 15 (it would have closed 20), the newest giving way first: "
            f"{new_stop.order_ref} (STP 10 AAPL) and {new_target.order_ref} (LMT 10 AAPL) cut to 5"))]

        # Then: both stops trigger on a fall: flat, not short.
        sim.control.set_price("AAPL", round((old_stop.ticket.stop_price or 0.0) - 0.5, 2))
        await eventually(lambda: {status(engine, old_stop.order_ref), status(engine, new_stop.order_ref)}
                         == {S.FILLED}, what="both stops triggered")
        await eventually(lambda: not working_at_broker(sim), what="nothing left working")
        assert sim.positions().get("AAPL", 0) == 0 == engine.portfolio.quantity("AAPL")


async def test_two_adopted_stops_not_linked_when_the_engine_sells_half_then_the_newer_cancelled_and_a_fall_leaves_flat(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: LONG 10 at the broker (bought by another client), two SELL STP 5 not linked on the engine's client
    # that its journal never knew: both adopted as the position's protection (together 10).
    async with outside_client(sim) as (outsider, contract):
        trade = outsider.placeOrder(contract, ib_async.MarketOrder("BUY", 10))
        await eventually(lambda: trade.orderStatus.status == "Filled", what="bought at the broker")
    stop_price = round(sim.quote("AAPL").bid - 5, 2)
    older, newer = [await placed_by_another_tool(sim, ib_async.Order(
        action="SELL", totalQuantity=5, orderType="STP", auxPrice=stop_price, tif="GTC")) for _ in range(2)]

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = {o.perm_id: o for o in engine.orders.orders.values() if o.ticket.strategy == "adopted"}
        kept, other = adopted[older.perm_id], adopted[newer.perm_id]
        assert kept.ticket.reduce_only
        assert other.ticket.reduce_only
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="the position seeded")
        events.drain()

        # Act: the engine sells 5: LONG 5.
        ticket = await engine.submit(sell(5))
        await eventually(lambda: status(engine, ticket.order_ref) is S.FILLED, what="the sell of 5")

        # Assert: the newer stop gives way, the older keeps the 5.
        await eventually(lambda: status(engine, other.order_ref) is S.CANCELLED, what="the newer stop cancelled")
        assert older.working
        assert not newer.working
        assert [o.total_qty for o in sim.orders() if o.working] == [5]
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"AAPL protection fitted to LONG 5 (it would have closed 10), the newest giving way first: "
            f"{other.order_ref} (STP 5 AAPL) cancelled"))]

        await fall_through(sim, engine, kept)
        assert sim.positions().get("AAPL", 0) == 0 == engine.portfolio.quantity("AAPL")


async def test_adopted_stop_and_target_in_one_oca_group_when_the_engine_sells_half_then_both_cut_not_one_cancelled(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker's OCA group of adopted orders is not on their ticket: taken as two orders not linked, the target
    # (10 beside the stop's 10 on a long of 5) would be cancelled instead of cut with its stop.
    async with outside_client(sim) as (outsider, contract):
        trade = outsider.placeOrder(contract, ib_async.MarketOrder("BUY", 10))
        await eventually(lambda: trade.orderStatus.status == "Filled", what="bought at the broker")
    bid = sim.quote("AAPL").bid
    stop, target = [await placed_by_another_tool(sim, ib_async.Order(
        action="SELL", totalQuantity=10, orderType=kind, auxPrice=round(bid - 5, 2) if kind == "STP" else 0.0,
        lmtPrice=round(bid + 5, 2) if kind == "LMT" else 0.0, tif="GTC", ocaGroup="tws-bracket-1", ocaType=1))
        for kind in ("STP", "LMT")]

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = {o.perm_id: o for o in engine.orders.orders.values() if o.ticket.strategy == "adopted"}
        mine_stop, mine_target = adopted[stop.perm_id], adopted[target.perm_id]
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="the position seeded")
        events.drain()

        ticket = await engine.submit(sell(5))
        await eventually(lambda: status(engine, ticket.order_ref) is S.FILLED, what="the sell of 5")

        await eventually(lambda: (stop.total_qty, target.total_qty) == (5, 5), what="both cut to 5 at the broker")
        assert stop.working
        assert target.working
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"{mine_stop.order_ref} (STP 10 AAPL) and {mine_target.order_ref} (LMT 10 AAPL) cut to the position of 5"))]


async def test_bracket_when_the_position_taken_from_the_broker_at_a_restart_is_half_then_stop_and_target_cut_to_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # A position taken from the broker (changed while tui-trader was away) kept protection of its old size: the stop
    # of 10 would have sold LONG 5 into SHORT 5. The mismatch reduces only here (the default halts: the kill switch).
    config = make_config(tmp_path, book_settle_s=0.2,
                         limits=limits_for_tests(position_mismatch_action=TriggerAction.REDUCING))
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="quotes")
        _, stop, target = await protected_long(first)
    async with outside_client(sim) as (outsider, contract):  # half sold in TWS while tui-trader was away
        trade = outsider.placeOrder(contract, ib_async.MarketOrder("SELL", 5))
        await eventually(lambda: trade.orderStatus.status == "Filled", what="sold at the broker")

    async with running(sim, config) as (engine, events):
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 5, what="the position taken from the broker")

        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 5, target.order_ref: 5},
                         what="stop and target cut to 5 at the broker")
        assert {status(engine, stop.order_ref), status(engine, target.order_ref)} == {S.SUBMITTED}
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cut to the position of 5"))]

        await fall_through(sim, engine, engine.orders.orders[stop.order_ref])
        assert sim.positions().get("AAPL", 0) == 0 == engine.portfolio.quantity("AAPL")
