"""Resubmit after an ambiguous submit (asks the broker for the orderRef first) and modify by id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ib_async import LimitOrder

from tui_trader.domain import Bracket, Order, OrderStatus, OrderType
from tui_trader.engine.engine import Engine
from tui_trader.errors import SafetyError
from tui_trader.sim import ManualClock, SimGateway

from .helpers import (
    below_bid,
    bracket_buy,
    buy,
    eventually,
    make_config,
    make_engine,
    modify_waiting_for_the_journal,
    outside_client,
    running,
    status,
)

S = OrderStatus


async def test_resubmit_when_unacknowledged_order_is_at_broker_then_adopted_not_resent(
        sim: SimGateway, tmp_path: Path) -> None:
    engine = make_engine(sim, make_config(tmp_path, ack_timeout_s=60))
    await engine.start()
    await eventually(lambda: "AAPL" in engine.market.quotes)
    sim.control.drop_messages("open_order", 1)  # the acknowledgement is lost on the way back
    sim.control.drop_messages("order_status", 1)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))
    await eventually(lambda: sim.order_refs() == [order.order_ref], what="order reached the broker")
    assert status(engine, order.order_ref) is S.SENDING

    resubmitted = await engine.resubmit(order.order_ref)

    assert resubmitted.status is S.SUBMITTED
    assert sim.order_refs() == [order.order_ref]
    assert sim.duplicate_order_refs() == []
    await engine.stop()


async def test_resubmit_when_broker_lacks_order_then_resent_once_under_same_ref(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first_gw = SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True)
    async with first_gw:
        first = make_engine(first_gw, config)
        await first.start()
        await eventually(lambda: "AAPL" in first.market.quotes)
        order = await first.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(first)))
        await eventually(lambda: status(first, order.order_ref) is S.SUBMITTED)
        await first.stop()
    amnesiac = SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True)  # lost the order
    async with amnesiac:
        second = make_engine(amnesiac, config)
        await second.start()
        assert status(second, order.order_ref) is S.UNKNOWN

        await second.resubmit(order.order_ref)

        await eventually(lambda: status(second, order.order_ref) is S.SUBMITTED, what="resent and acknowledged")
        assert amnesiac.order_refs() == [order.order_ref]
        assert "unknown_orders" not in second.blocks
        await second.stop()


async def test_resubmit_of_an_order_acknowledged_before_when_resent_then_its_new_permanent_id_taken(
        tmp_path: Path) -> None:
    # The resent order kept the permanent id of its first placement: the broker's acknowledgement of the new one,
    # under the same ref and another permanent id, is another order's, and the order stayed SENDING.
    config = make_config(tmp_path)
    first_gw = SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True)
    async with first_gw, running(first_gw, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes)
        order = await first.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(first)))
        await eventually(lambda: status(first, order.order_ref) is S.SUBMITTED)
        old_perm = first.orders.orders[order.order_ref].perm_id
    amnesiac = SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True)  # lost the order
    async with amnesiac:
        async with outside_client(amnesiac) as (outsider, contract):  # another client's order: new ids move on
            trade = outsider.placeOrder(contract, LimitOrder("BUY", 1, round(amnesiac.quote("AAPL").bid - 5, 2)))
            await eventually(lambda: trade.orderStatus.status == "Submitted")
        async with running(amnesiac, config) as (second, _):
            assert status(second, order.order_ref) is S.UNKNOWN

            await second.resubmit(order.order_ref)

            await eventually(lambda: status(second, order.order_ref) is S.SUBMITTED, what="resent and acknowledged")
            (held,) = [o for o in amnesiac.orders() if o.order_ref == order.order_ref]
            assert second.orders.orders[order.order_ref].perm_id == held.perm_id != old_perm


async def test_resubmit_when_order_acknowledged_then_refused(engine: Engine) -> None:
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    with pytest.raises(SafetyError):
        await engine.resubmit(order.order_ref)


async def test_modify_working_limit_then_same_id_new_figures_and_fills_at_them(
        engine: Engine, sim: SimGateway) -> None:
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine, 2.0)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    new_limit = below_bid(engine, 1.0)

    verdict = await engine.modify(order.order_ref, quantity=20, limit_price=new_limit)

    assert verdict.passed
    (at_broker,) = [o for o in sim.orders() if o.order_ref == order.order_ref]
    await eventually(lambda: (at_broker.total_qty, at_broker.lmt_price) == (20, new_limit), what="modified")
    assert [r.modification for r in sim.received_orders()] == [False, True]
    sim.control.set_price("AAPL", new_limit - 0.5)
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled at the new size")
    assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 20
    assert sim.duplicate_order_refs() == []
    trace = await engine.order_trace(order.order_ref)
    assert trace is not None
    assert [s.step for s in trace.steps].count("risk check of a modify") == len(verdict.checks) > 0


async def test_modify_when_risk_denies_then_nothing_sent(engine: Engine, sim: SimGateway) -> None:
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)

    verdict = await engine.modify(order.order_ref, quantity=5_000)

    assert not verdict.passed
    assert "order_quantity" in {c.name for c in verdict.failures}
    assert engine.orders.orders[order.order_ref].ticket.quantity == 10
    assert len(sim.received_orders()) == 1


async def test_modify_when_order_filled_then_refused(engine: Engine) -> None:
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED)
    with pytest.raises(SafetyError):
        await engine.modify(order.order_ref, limit_price=1.0)


async def resting_bracket(engine: Engine, sim: SimGateway, qty: float) -> tuple[Order, Order, Order]:
    """A buy limit below the market with a stop and a target, all acknowledged; entry, stop, target."""
    bid = sim.quote("AAPL").bid
    bracket = Bracket(stop_price=round(bid - 4, 2), take_profit_price=round(bid + 4, 2))
    entry = await engine.submit(buy(qty, order_type=OrderType.LMT, limit_price=round(bid - 1, 2), bracket=bracket))
    stop, target = engine.orders.children(entry.order_ref)
    await eventually(lambda: all(status(engine, o.order_ref) is S.SUBMITTED for o in (entry, stop, target)),
                     what="the bracket acknowledged")
    return entry, stop, target


def modified_refs(sim: SimGateway) -> list[str]:
    """The orderRefs of the modifications the simulator received, in order."""
    return [r.order_ref for r in sim.received_orders() if r.modification]


def broker_qty(sim: SimGateway, order_ref: str) -> float:
    """The quantity the simulator holds for ``order_ref``."""
    return next(o.total_qty for o in sim.orders() if o.order_ref == order_ref)


async def test_modify_bracket_entry_quantity_down_when_it_fills_and_stop_triggers_then_flat_not_short(
        engine: Engine, sim: SimGateway) -> None:
    entry, stop, target = await resting_bracket(engine, sim, 100)

    verdict = await engine.modify(entry.order_ref, quantity=50)

    assert verdict.passed
    await eventually(lambda: [broker_qty(sim, o.order_ref) for o in (entry, stop, target)] == [50, 50, 50],
                     what="the entry and both exits at 50")
    assert modified_refs(sim) == [stop.order_ref, target.order_ref, entry.order_ref]  # exits shrink first
    assert [engine.orders.orders[o.order_ref].ticket.quantity for o in (stop, target)] == [50, 50]
    limit = entry.ticket.limit_price or 0.0
    sim.control.set_quote("AAPL", round(limit - 0.02, 2), round(limit - 0.01, 2), 500, 500)
    await eventually(lambda: status(engine, stop.order_ref) is S.SUBMITTED, what="entry filled, stop working")
    sim.control.set_price("AAPL", round((stop.ticket.stop_price or 0.0) - 0.5, 2))
    await eventually(lambda: status(engine, stop.order_ref) is S.FILLED, what="the stop filled")
    await eventually(lambda: status(engine, target.order_ref) is S.CANCELLED, what="the target cancelled (OCA)")
    assert sim.positions().get("AAPL", 0) == engine.portfolio.quantity("AAPL") == 0


async def test_modify_bracket_entry_quantity_up_then_exits_follow_after_the_entry(
        engine: Engine, sim: SimGateway) -> None:
    entry, stop, target = await resting_bracket(engine, sim, 50)

    verdict = await engine.modify(entry.order_ref, quantity=80)

    assert verdict.passed
    await eventually(lambda: [broker_qty(sim, o.order_ref) for o in (entry, stop, target)] == [80, 80, 80],
                     what="the entry and both exits at 80")
    assert modified_refs(sim) == [entry.order_ref, stop.order_ref, target.order_ref]  # the entry grows first


async def test_modify_entry_limit_only_then_exits_untouched(engine: Engine, sim: SimGateway) -> None:
    entry, _, _ = await resting_bracket(engine, sim, 50)

    new_limit = below_bid(engine, 2.0)

    await engine.modify(entry.order_ref, limit_price=new_limit)

    await eventually(lambda: [o.lmt_price for o in sim.orders() if o.order_ref == entry.order_ref] == [new_limit],
                     what="the new limit at the broker")
    assert modified_refs(sim) == [entry.order_ref]


async def test_modify_protective_stop_above_its_resting_entry_then_refused_and_nothing_sent(
        engine: Engine, sim: SimGateway) -> None:
    _, stop, _ = await resting_bracket(engine, sim, 50)

    with pytest.raises(SafetyError, match="exceed its entry"):
        await engine.modify(stop.order_ref, quantity=60)

    assert modified_refs(sim) == []
    assert engine.orders.orders[stop.order_ref].ticket.quantity == 50


async def test_modify_protective_stop_above_the_position_then_refused(engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, qty=10)

    with pytest.raises(SafetyError, match="position it protects"):
        await engine.modify(stop.order_ref, quantity=15)

    await engine.modify(stop.order_ref, quantity=5)  # smaller than the position: allowed
    await eventually(lambda: broker_qty(sim, stop.order_ref) == 5, what="the stop at 5")


async def test_modify_partially_filled_entry_below_its_fill_then_refused(engine: Engine, sim: SimGateway) -> None:
    entry, stop, _ = await resting_bracket(engine, sim, 100)
    limit = entry.ticket.limit_price or 0.0
    sim.control.set_quote("AAPL", round(limit - 0.02, 2), round(limit - 0.01, 2), 500, 30)  # 30 on offer
    await eventually(lambda: status(engine, entry.order_ref) is S.PARTIALLY_FILLED, what="30 filled")

    with pytest.raises(SafetyError, match="30 filled already"):
        await engine.modify(entry.order_ref, quantity=20)

    assert modified_refs(sim) == []
    await engine.modify(entry.order_ref, quantity=40)  # above the fill: entry and exits go to 40
    await eventually(lambda: [broker_qty(sim, o.order_ref) for o in (entry, stop)] == [40, 40], what="at 40")


async def test_modify_when_asked_several_times_at_once_then_sent_in_that_order_and_the_broker_holds_the_last(
        engine: Engine, sim: SimGateway) -> None:
    # Each modify amends the order, waits for the journal, then sends. Issued together, the first one's wait
    # ended last (its flush yielded the loop once; the others' flushes wrote its events with theirs): it
    # reached the broker after the newer ones, the broker holding 11 while the engine showed 15.
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine, 3.0)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    asked = [11, 12, 13, 14, 15]

    verdicts = await asyncio.gather(*(engine.modify(order.order_ref, quantity=q) for q in asked))

    assert all(v.passed for v in verdicts)
    await eventually(lambda: len(modified_refs(sim)) == len(asked), what="every modification received")
    assert [r.qty for r in sim.received_orders() if r.modification] == asked
    shown = engine.orders.orders[order.order_ref].ticket.quantity
    await eventually(lambda: broker_qty(sim, order.order_ref) == shown == 15, what="the broker at what is shown")


async def test_modify_when_asked_during_a_modify_then_built_on_the_earlier_one(
        engine: Engine, sim: SimGateway) -> None:
    # The second is checked against the order as the first left it: a new limit keeps the first's quantity.
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=below_bid(engine, 3.0)))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    new_limit = below_bid(engine, 2.0)

    await asyncio.gather(engine.modify(order.order_ref, quantity=20), engine.modify(order.order_ref,
                                                                                    limit_price=new_limit))

    (at_broker,) = [o for o in sim.orders() if o.order_ref == order.order_ref]
    await eventually(lambda: (at_broker.total_qty, at_broker.lmt_price) == (20, new_limit), what="both changes")
    ticket = engine.orders.orders[order.order_ref].ticket
    assert (ticket.quantity, ticket.limit_price) == (20, new_limit)


async def test_modify_when_the_kill_switch_engages_while_it_is_journaled_then_not_sent_and_shown_as_before(
        engine: Engine, sim: SimGateway) -> None:
    # The gate passed the modify, then it waited for the journal: a kill in that wait did not stop it
    # going out after the kill's cancel, and a modify not sent left the engine showing its new figures.
    async with modify_waiting_for_the_journal(engine) as (order, limit, modify):
        engine.kill("while a modify was journaled")
    # The gate denies it; or the kill's cancel was confirmed first, and the order is no longer modifiable.
    outcome = await asyncio.gather(modify, return_exceptions=True)
    if isinstance(outcome[0], SafetyError):
        assert "became CANCELLED while its modification was journaled" in outcome[0].message
    else:
        assert [c.name for c in outcome[0].checks if not c.passed] == ["trading_state"]

    assert [r.modification for r in sim.received_orders() if r.order_ref == order.order_ref] == [False]
    ticket = engine.orders.orders[order.order_ref].ticket
    assert (ticket.quantity, ticket.limit_price) == (10, limit)  # what the broker was sent
    assert any(h.note.startswith("modify not sent (") for h in engine.orders.orders[order.order_ref].history)


async def test_modify_when_the_order_fills_while_it_is_journaled_then_refused_and_shown_as_filled(
        engine: Engine, sim: SimGateway) -> None:
    async with modify_waiting_for_the_journal(engine) as (order, limit, modify):
        sim.control.set_price("AAPL", limit - 0.5)
        await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled at the old size")
    with pytest.raises(SafetyError, match="became FILLED while its modification was journaled"):
        await modify

    assert [r.modification for r in sim.received_orders() if r.order_ref == order.order_ref] == [False]
    assert engine.orders.orders[order.order_ref].ticket.quantity == 10 == engine.portfolio.quantity("AAPL")
