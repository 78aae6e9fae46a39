"""An orderRef another tool (or a TWS user) gives every order of its own ("bot1") comes back on a later run: the new
order is one of its own, adopted under a name of its own, and the journal's row of the earlier one is kept."""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import OrderStatus
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.ops.trace import order_trace
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.orders import SimOrder
from tui_trader.store.journal import Journal

from .helpers import REFUSAL, adopted_refs, eventually, make_config, placed_by_another_tool, running, status

S = OrderStatus
REF = "bot1"


async def _buy_limit(sim: SimGateway, qty: float, below: float) -> SimOrder:
    """A buy limit of ``qty`` AAPL ``below`` the bid, placed by another tool under the orderRef ``bot1``, working."""
    bid = sim.quote("AAPL").bid
    return await placed_by_another_tool(sim, ib_async.LimitOrder("BUY", qty, round(bid - below, 2), orderRef=REF))


async def _ended(sim: SimGateway, held: SimOrder, how: str) -> None:
    """``held``, working at the broker, ends: it fills (the price falls through its limit, then comes back), or it is
    cancelled in TWS."""
    if how == "cancelled":
        sim.control.cancel(REF, perm_id=held.perm_id)
        return
    bid = sim.quote("AAPL").bid
    sim.control.set_price("AAPL", round(held.lmt_price - 0.5, 2))
    await eventually(lambda: held.status == "Filled", what="the first filled")
    sim.control.set_price("AAPL", bid)


@pytest.mark.parametrize("how", ["filled", "cancelled"])
async def test_same_ref_on_a_later_run_when_the_earlier_order_ended_then_the_new_one_adopted_under_its_own_name(
        sim: SimGateway, tmp_path: Path, how: str) -> None:
    # Adopted as plain "bot1", the new order's journal row overwrote the earlier one's (its size, status and fills
    # read as the new order's), and a commission of the earlier fill would have been added to the new order.
    config = make_config(tmp_path)
    first = await _buy_limit(sim, 3, below=3)
    async with running(sim, config) as (engine, _):
        await _ended(sim, first, how)
        await eventually(lambda: status(engine, REF).is_final, what="the first ended")
    second = await _buy_limit(sim, 4, below=2)
    second_ref = f"{REF}#{second.perm_id}"

    async with running(sim, config) as (engine, events):
        assert adopted_refs(events) == [second_ref]
        sim.control.set_price("AAPL", round(second.lmt_price - 0.5, 2))
        await eventually(lambda: status(engine, second_ref) is S.FILLED, what="the second filled")
        booked = engine.portfolio.quantity("AAPL")
        blocked = engine.entries_blocked_reason

    assert (booked, blocked) == ((3 if how == "filled" else 0) + 4, "")
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        orders = {o.order_ref: (o.perm_id, o.ticket.quantity, o.status, o.filled_quantity)
                  for o in await journal.orders()}
        fills = sorted((f.order_ref, f.quantity) for f in await journal.fills())
    finally:
        await journal.close()
    first_now = (S.FILLED, 3) if how == "filled" else (S.CANCELLED, 0)
    assert orders == {REF: (first.perm_id, 3, *first_now), second_ref: (second.perm_id, 4, S.FILLED, 4)}
    assert fills == sorted([*([(REF, 3)] if how == "filled" else []), (second_ref, 4)])


async def test_same_ref_on_a_later_run_when_a_modify_of_the_new_one_refused_then_the_refusal_is_its_own(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker's refusal names the order by its orderRef: no order tracked under it (the earlier one ended), it was
    # shown on nothing, and the new order showed the refused size while the broker held the one it had.
    config = make_config(tmp_path)
    first = await _buy_limit(sim, 3, below=3)
    async with running(sim, config) as (engine, _):
        await _ended(sim, first, "cancelled")
        await eventually(lambda: status(engine, REF).is_final, what="the first ended")
    second = await _buy_limit(sim, 4, below=2)

    async with running(sim, config) as (engine, _):
        second_ref = f"{REF}#{second.perm_id}"
        sim.control.refuse_next_modify(201, REFUSAL, order_ref=REF, perm_id=second.perm_id)

        verdict = await engine.modify(second_ref, quantity=5)

        assert verdict.passed, verdict.reason
        await eventually(lambda: engine.orders.orders[second_ref].last_error, what="the refusal heard")
        assert (engine.orders.orders[second_ref].ticket.quantity, second.total_qty) == (4, 4)
        assert not engine.snapshot().modifications


async def test_same_ref_when_the_broker_lost_the_earlier_order_then_its_resubmit_does_not_take_the_new_one_for_it(
        tmp_path: Path) -> None:
    # The resubmit looked the order up at the broker by its orderRef alone: the new order under "bot1" was taken for
    # the lost one, said to be "already at the broker", and the lost one stayed UNKNOWN, entries blocked.
    config = make_config(tmp_path)
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as first_gw:
        await _buy_limit(first_gw, 3, below=3)
        async with running(first_gw, config) as (engine, _):
            assert status(engine, REF) is S.SUBMITTED
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as amnesiac:  # lost the order
        second = await _buy_limit(amnesiac, 4, below=2)
        async with running(amnesiac, config) as (engine, events):
            second_ref = f"{REF}#{second.perm_id}"
            assert (status(engine, REF), status(engine, second_ref)) == (S.UNKNOWN, S.SUBMITTED)

            await engine.resubmit(REF)

            await eventually(lambda: status(engine, REF) is S.SUBMITTED, what="resent and acknowledged")
            said = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
            assert ("order_found" in said, "order_resubmitted" in said) == (False, True)
            assert sorted(o.total_qty for o in amnesiac.orders() if o.working) == [3, 4]
            assert engine.orders.orders[REF].perm_id not in (None, second.perm_id)


async def _earlier_adopted_then_away(sim: SimGateway, config: EngineConfig, below: float) -> SimOrder:
    """A first ``bot1`` (a buy limit of 3 ``below`` the bid) adopted by a run that then stops: the earlier order,
    its journal row working."""
    first = await _buy_limit(sim, 3, below=below)
    async with running(sim, config) as (engine, _):
        assert status(engine, REF) is S.SUBMITTED
    return first


def _tracked(engine: Engine) -> dict[str, tuple[int | None, OrderStatus, float, float]]:
    """Each order tracked: ref → (permanent id, status, filled, commission)."""
    return {r: (o.perm_id, o.status, o.filled_quantity, o.commission) for r, o in engine.orders.orders.items()}


async def test_same_ref_when_the_earlier_filled_while_away_and_a_new_one_works_then_each_ends_with_its_own(
        sim: SimGateway, tmp_path: Path) -> None:
    # Met in one reconciliation, adopted before the executions are fetched: the earlier one, restored from its
    # journal row, holds the orderRef, so the new one is adopted as bot1#<permId>; the completed order and the
    # execution, each with its permanent id, end the earlier one with its own fill (passed before any change).
    config = make_config(tmp_path)
    first = await _earlier_adopted_then_away(sim, config, below=3)
    await _ended(sim, first, "filled")
    second = await _buy_limit(sim, 4, below=2)
    second_ref = f"{REF}#{second.perm_id}"

    async with running(sim, config) as (engine, events):
        said = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
        tracked = _tracked(engine)
        fills = sorted((f.order_ref, f.quantity) for f in engine.orders.fills.values())
        booked, blocked = engine.portfolio.quantity("AAPL"), engine.entries_blocked_reason

    assert {r: t[:3] for r, t in tracked.items()} == {REF: (first.perm_id, S.FILLED, 3),
                                                      second_ref: (second.perm_id, S.SUBMITTED, 0)}
    assert tracked[second_ref][3] == 0
    assert fills == [(REF, 3)]
    assert (booked, blocked) == (3, "")
    assert [k for k in said if k in ("order_adopted", "fill_recovered", "order_reconciled", "unknown_fill")] == [
        "order_adopted", "fill_recovered", "order_reconciled"]


async def test_same_ref_when_another_order_filled_while_away_without_commission_then_nothing_of_it_on_the_tracked_one(
        sim: SimGateway, tmp_path: Path) -> None:
    # The fills table kept no permanent id: read back after a restart, a fill of another order under bot1 (one that
    # filled while tui-trader was away, never seen working) matched the tracked bot1 by its ref alone, and its
    # commission, recovered from the executions, was added to that order, which had filled nothing. Now that fill is
    # another run's, never booked here: neither it nor its commission, late or not, lands on the tracked bot1.
    config = make_config(tmp_path, book_settle_s=0.2)
    first = await _earlier_adopted_then_away(sim, config, below=6)
    second = await _buy_limit(sim, 4, below=2)
    await _ended(sim, second, "filled")
    assert first.working
    sim.control.drop_messages("commission", -1)
    async with running(sim, config) as (engine, _):  # the other order's fill left out, its commission not reported
        assert not engine.orders.fills
    sim.control.clear_faults()

    async with running(sim, config) as (engine, _):
        await engine.broker.current_time()  # the commission reports sent at the connect have come
        tracked = _tracked(engine)
        fills, commissions = dict(engine.orders.fills), engine.portfolio.commissions

    assert tracked == {REF: (first.perm_id, S.SUBMITTED, 0, 0)}
    assert (fills, commissions) == ({}, 0)


async def _both_filled_while_away(sim: SimGateway, config: EngineConfig) -> tuple[SimOrder, SimOrder]:
    """The adopted bot1 (3) filled while away, and another tool's new bot1 (4) placed and filled then too."""
    first = await _earlier_adopted_then_away(sim, config, below=3)
    await _ended(sim, first, "filled")
    second = await _buy_limit(sim, 4, below=2)
    await _ended(sim, second, "filled")
    return first, second


async def test_same_ref_when_the_earlier_and_a_new_one_both_filled_while_away_then_the_trace_of_bot1_is_its_own(
        sim: SimGateway, tmp_path: Path) -> None:
    # The new order, never seen working, is not tracked: its execution was booked as a fill for an order not known
    # here, under the broker's orderRef, and the trace of bot1 read every fill under that ref: the other order's 4
    # shown as bot1's fill, with its commission, and "position 7 after this order". Now that execution is another
    # run's, not booked: its 4 are taken from the broker's position, said once.
    config = make_config(tmp_path)
    first, _ = await _both_filled_while_away(sim, config)

    async with running(sim, config) as (engine, events):
        said = {e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)}
        tracked = _tracked(engine)
        booked = engine.portfolio.quantity("AAPL")
        (own,) = [f for f in engine.orders.fills.values() if f.perm_id == first.perm_id]
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        steps = [(s.step, s.detail) for s in await order_trace(journal, REF) if s.step in ("fill", "commission",
                                                                                             "position")]
    finally:
        await journal.close()

    assert tracked == {REF: (first.perm_id, S.FILLED, 3, own.commission)}
    assert booked == 7
    assert ("executions_not_this_journals" in said, "unknown_fill" in said) == (True, False)
    assert steps == [("fill", f"BUY 3 @ {own.price:g} ({own.exec_id})"),
                     ("commission", f"{own.commission:g} on {own.exec_id}"),
                     ("position", "AAPL position 3 after this order")]


async def test_same_ref_when_the_earlier_and_a_new_one_both_filled_while_away_then_the_report_tells_them_apart(
        sim: SimGateway, tmp_path: Path) -> None:
    # The other order's execution was journaled under bot1: by the orderRef alone the report held both lots as bot1's,
    # the adopted order's strategy (3 and 4 where bot1 bought 3). Now it is another run's, not journaled at all: its 4
    # are in the position the start took from the broker, a lot of their own in the report (held in the book).
    from datetime import date

    from tui_trader.ops.reports import Period, build_report

    config = make_config(tmp_path)
    await _both_filled_while_away(sim, config)
    async with running(sim, config):
        pass
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        report = await build_report(journal, Period(date(2000, 1, 1), date(2100, 1, 1)))
    finally:
        await journal.close()

    lots = [(p["order_ref"], p["strategy"], p["quantity"]) for p in report["open_positions"]]
    assert lots == [(REF, "adopted", 3), ("", "held in the book", 4)]
