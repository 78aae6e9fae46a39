"""Two orders working at the broker under one orderRef (another tool's or a TWS user's fixed ref) are two orders
here: each adopted under a ref of its own, with its own figures, its own end and its own fills, across restarts."""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import OrderStatus
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import SimGateway
from tui_trader.sim.orders import SimOrder

from .helpers import (
    REFUSAL,
    adopted_refs,
    eventually,
    kill_checked,
    long_at_the_broker,
    make_config,
    placed_by_another_tool,
    running,
    status,
)

S = OrderStatus
REF = "bot1"


async def _two_under_one_ref(sim: SimGateway) -> tuple[SimOrder, SimOrder]:
    """Two buy limits placed by another tool under the orderRef ``bot1``, working: 3 at 6 below the bid, then 4 at 3
    below it (the one that fills first when the price falls)."""
    bid = sim.quote("AAPL").bid
    first = await placed_by_another_tool(sim, ib_async.LimitOrder("BUY", 3, round(bid - 6, 2), orderRef=REF))
    second = await placed_by_another_tool(sim, ib_async.LimitOrder("BUY", 4, round(bid - 3, 2), orderRef=REF))
    assert first.perm_id != second.perm_id
    return first, second


def _tracked(engine: Engine, held: SimOrder) -> tuple[str, float, float | None]:
    """(ref, quantity, limit) of the order tracked here under ``held``'s permanent id."""
    (order,) = [o for o in engine.orders.orders.values() if o.perm_id == held.perm_id]
    return order.order_ref, order.ticket.quantity, order.ticket.limit_price


async def test_two_orders_under_one_ref_found_at_start_then_two_orders_each_with_its_own_figures(
        sim: SimGateway, tmp_path: Path) -> None:
    # Adopted under their orderRef alone, they were one order: the second never adopted, its reports applied to the
    # first (its size and status flipping between the two), shown and counted once where the broker held two.
    first, second = await _two_under_one_ref(sim)

    async with running(sim, make_config(tmp_path)) as (engine, events):
        snapshot = engine.snapshot()

        assert _tracked(engine, first) == (REF, 3, first.lmt_price)
        assert _tracked(engine, second) == (f"{REF}#{second.perm_id}", 4, second.lmt_price)
        assert sorted(adopted_refs(events)) == [REF, f"{REF}#{second.perm_id}"]
        both = {REF, f"{REF}#{second.perm_id}"}
        assert {o.order_ref for o in snapshot.orders if o.status is S.SUBMITTED} == both
        assert {o.order_ref for o in snapshot.account.working_orders} == both


async def test_two_orders_under_one_ref_when_one_cancelled_at_the_broker_then_only_that_one_ends(
        sim: SimGateway, tmp_path: Path) -> None:
    first, second = await _two_under_one_ref(sim)

    async with running(sim, make_config(tmp_path)) as (engine, _):
        second_ref = f"{REF}#{second.perm_id}"
        sim.control.cancel(REF, perm_id=second.perm_id)

        await eventually(lambda: status(engine, second_ref) is S.CANCELLED, what="the second cancelled")
        assert status(engine, REF) is S.SUBMITTED
        assert first.working
        assert {o.order_ref for o in engine.snapshot().account.working_orders} == {REF}


@pytest.mark.parametrize("away", ["none", "first", "second"])
async def test_two_orders_under_one_ref_when_restarted_then_still_two_and_one_cancelled_while_away_ends_alone(
        sim: SimGateway, tmp_path: Path, away: str) -> None:
    # A first order cancelled while the engine was away stayed working here: the second's report, under the same
    # orderRef, was taken to mention it.
    first, second = await _two_under_one_ref(sim)
    config = make_config(tmp_path)
    second_ref = f"{REF}#{second.perm_id}"
    async with running(sim, config):
        pass
    cancelled = {"none": None, "first": first, "second": second}[away]
    if cancelled is not None:
        sim.control.cancel(REF, perm_id=cancelled.perm_id)

    async with running(sim, config) as (engine, events):
        statuses = {REF: status(engine, REF), second_ref: status(engine, second_ref)}
        adoptions = adopted_refs(events)

    ended = {"none": set(), "first": {REF}, "second": {second_ref}}[away]
    assert statuses == {ref: S.CANCELLED if ref in ended else S.SUBMITTED for ref in (REF, second_ref)}
    assert adoptions == []


async def test_two_orders_under_one_ref_when_the_second_fills_then_its_fill_booked_to_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The execution, under the shared orderRef, was booked against the first order.
    first, second = await _two_under_one_ref(sim)

    async with running(sim, make_config(tmp_path)) as (engine, _):
        second_ref = f"{REF}#{second.perm_id}"
        sim.control.set_price("AAPL", round((first.lmt_price + second.lmt_price) / 2, 2))  # below the second only

        await eventually(lambda: status(engine, second_ref) is S.FILLED, what="the second filled")
        (fill,) = engine.orders.fills.values()
        assert (fill.order_ref, fill.quantity) == (second_ref, 4)
        assert engine.orders.orders[second_ref].filled_quantity == 4
        assert (status(engine, REF), engine.orders.orders[REF].filled_quantity) == (S.SUBMITTED, 0)
        assert first.working
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 4, what="booked")


async def _stop_under_ref(sim: SimGateway, qty: float, bid: float) -> SimOrder:
    """A GTC SELL STP ``qty`` AAPL 5 below ``bid`` under the orderRef ``bot1``, placed by another tool."""
    return await placed_by_another_tool(sim, ib_async.StopOrder("SELL", qty, round(bid - 5, 2), tif="GTC",
                                                                   orderRef=REF))


async def test_two_stops_under_one_ref_over_a_long_then_judged_as_two_and_the_one_that_overreaches_said(
        sim: SimGateway, tmp_path: Path) -> None:
    # Judged under one name, they counted as one OCA group: both fitted a long of 10 (each sells 10), nothing was
    # said, and the second was adopted not as protection without a word.
    bid = await long_at_the_broker(sim)
    await _stop_under_ref(sim, 10, bid)
    second = await _stop_under_ref(sim, 10, bid)

    async with running(sim, make_config(tmp_path)) as (engine, events):
        second_ref = f"{REF}#{second.perm_id}"

        assert engine.orders.orders[REF].ticket.reduce_only
        assert not engine.orders.orders[second_ref].ticket.reduce_only
        (said,) = [e.alert.text for e in events.drain()
                   if isinstance(e, AlertRaised) and e.alert.kind == "protection_refused"]
        assert said.startswith(f"{REF} and {second_ref} together would sell 20 against AAPL LONG 10: {second_ref} "
                               "not adopted as protection")


async def test_two_stops_under_one_ref_when_an_automatic_trip_then_the_second_kept_by_its_own_ref(
        sim: SimGateway, tmp_path: Path) -> None:
    # The kill's check at the broker named the kept stop by its orderRef, the first order's: the first, cancelled,
    # was said to be still working after the cancel, and the check failed.
    bid = await long_at_the_broker(sim)
    first = await _stop_under_ref(sim, 15, bid)  # larger than the position: could add exposure, not protection
    second = await _stop_under_ref(sim, 10, bid)

    async with running(sim, make_config(tmp_path)) as (engine, events):
        second_ref = f"{REF}#{second.perm_id}"
        assert engine.orders.orders[second_ref].ticket.reduce_only

        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)

        report = (await kill_checked(events)).report
        assert (report.kept, report.remaining, report.verified) == ((second_ref,), (), True)
        assert (first.working, second.working) == (False, True)
        assert status(engine, REF) is S.CANCELLED


async def test_two_orders_under_one_ref_when_a_modify_of_the_second_refused_then_the_second_back_at_its_figures(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker's refusal names the order by its orderRef: it was taken for the first order's (its error shown
    # there), and the second showed the refused size while the broker held the one it had.
    _, second = await _two_under_one_ref(sim)

    async with running(sim, make_config(tmp_path)) as (engine, _):
        second_ref = f"{REF}#{second.perm_id}"
        sim.control.refuse_next_modify(201, REFUSAL, order_ref=REF)

        verdict = await engine.modify(second_ref, quantity=5)

        assert verdict.passed, verdict.reason
        await eventually(lambda: engine.orders.orders[second_ref].last_error, what="the refusal heard")
        assert (engine.orders.orders[second_ref].ticket.quantity, second.total_qty) == (4, 4)
        assert not engine.orders.orders[REF].last_error
        assert not engine.snapshot().modifications
