"""Reconciliations that overlap: one asked for while another runs, and the book settled while a commission is late."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tui_trader.domain import ConnectionState, OrderStatus, OrderType
from tui_trader.domain.events import AlertRaised, ConnectionChanged
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.sim import SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import CLIENT_ID, alerts_said, buy, eventually, make_config, make_engine, quiet, running, status

S = OrderStatus


def alerts(events: Subscription) -> list[tuple[str, str]]:
    """(kind, text) of the alerts received so far (drains the subscription)."""
    return [(a.kind, a.text) for a in alerts_said(events)]


def runs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Why each reconciliation run logged so far was asked for, in order."""
    return [m.removeprefix("reconciling: ") for m in caplog.messages if m.startswith("reconciling: ")]


def cancels_overtaken(sim: SimGateway, *order_ids: int) -> None:
    """IB's 10148 for each of ``order_ids``, written in one step (the engine reads them together): the answers
    to cancels that fills overtook (of orders this session's ib_async does not hold: no orderRef)."""
    for order_id in order_ids:
        sim.control.send_error(10148, f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                               "state: Filled.", req_id=order_id, client_id=CLIENT_ID)


async def test_reconcile_requested_while_connecting_then_the_connects_own_still_settles_the_book(
        sim: SimGateway, tmp_path: Path) -> None:
    # IB's 1102 while the connect waited in its subscribe step started a reconciliation; the connect's own
    # (startup) one, asked for while it ran, only set "once more", and the rerun was an ordinary one: the
    # book was never seeded (cash 0 against the broker's 1,000,000) nor settled, and a reconciliation
    # that merely happened to run lifted the connect's entry block.
    eng = make_engine(sim, make_config(tmp_path))
    events = eng.subscribe("test", lossless=True)
    sim.control.delay_messages("contract_details_end", 5)  # the connect waits in its subscribe step
    start = asyncio.create_task(eng.start())
    try:
        details = str(int(Out.REQ_CONTRACT_DATA))

        def asked() -> int:
            return sum(fields[:1] == [details] for _, fields in sim.received_frames)

        await eventually(lambda: asked() == 2, what="the connect in its subscribe step (AAPL and MSFT qualified)")
        sim.control.delay_messages("open_orders_end", 30)  # the 1102's reconciliation stays running
        sim.control.send_error(1102, client_id=CLIENT_ID)
        await eventually(lambda: eng._reconciling, what="the 1102's reconciliation running")
        sim.control.step(5)  # the qualification answered
        await eventually(lambda: asked() == 4, what="both symbols' contract details asked")
        sim.control.step(5)  # and answered
        await eventually(lambda: "AAPL" in eng.market.instruments, what="the subscribe step done")
        assert eng._reconciling  # the connect's reconciliation waits for the 1102's
        assert not eng.book_settled
        assert "reconciling" in eng.blocks
        sim.control.clear_faults()
        sim.control.step(30)  # the 1102's open orders are answered
        await asyncio.wait_for(start, 15)

        assert eng.book_settled
        assert eng.portfolio.cash == pytest.approx(sim.cash)
        assert "reconciling" not in eng.blocks
        said = [e.alert.kind if isinstance(e, AlertRaised) else e.state for e in events.drain()
                if isinstance(e, AlertRaised | ConnectionChanged)]
        assert said.index("book_seeded") < said.index(ConnectionState.CONNECTED)  # link and entries up once seeded
    finally:
        start.cancel()
        await eng.stop()


async def test_requested_reconcile_fails_then_retried_until_the_unknown_order_is_settled(
        sim: SimGateway, tmp_path: Path) -> None:
    # A requested reconciliation that failed (its open orders unanswered) left the order UNKNOWN and new
    # entries blocked for good: nothing asked again while the connection stayed up.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes, what="first quote")
        for kind in ("open_order", "order_status", "execution", "commission"):
            sim.control.drop_messages(kind, -1)  # filled unheard: UNKNOWN after the ack timeout
        sim.control.drop_messages("open_orders_end", 1)  # the reconciliation it asks for fails
        order = await eng.submit(buy(10))
        await eventually(lambda: any("reconciliation failed (no answer within" in text for _, text in alerts(events)),
                         what="the reconciliation failed")
        assert status(eng, order.order_ref) is S.UNKNOWN
        assert "unknown_orders" in eng.blocks
        sim.control.clear_faults()

        await eventually(lambda: "unknown_orders" not in eng.blocks, what="settled by a retry")
        assert status(eng, order.order_ref) is S.FILLED
        assert eng.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 10


async def test_restart_while_a_commission_is_late_then_cash_adopted_and_the_commission_not_taken_twice(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker's cash had the commission off, the journal's not (its report late): the book adopted the
    # broker's cash, then the report came and was taken off cash again, one commission short for good.
    config = make_config(tmp_path, book_settle_s=0.5)
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        sim.control.delay_messages("commission", 30)  # held 30 simulated seconds
        order = await first.submit(buy(5))
        await eventually(lambda: status(first, order.order_ref) is S.FILLED, what="filled")
    (execution,) = sim.executions()

    async with running(sim, config) as (second, events):
        await eventually(lambda: second.book_settled, what="the book settled")
        assert second.portfolio.cash == pytest.approx(sim.cash, abs=0.01)  # adopted, commission included
        assert "cash_mismatch" in [kind for kind, _ in alerts(events)]
        sim.control.step(31)  # the commission report comes
        sim.control.clear_faults()
        await eventually(lambda: second.orders.fills[execution.exec_id].commission is not None, what="commission")

        assert second.portfolio.cash == pytest.approx(sim.cash, abs=0.01)
        assert second.portfolio.commissions == pytest.approx(execution.commission)

    async with running(sim, config) as (third, events):  # the journal's book agrees with the broker's
        await eventually(lambda: third.book_settled, what="the book settled")
        assert third.portfolio.cash == pytest.approx(sim.cash, abs=0.01)
        assert third.portfolio.commissions == pytest.approx(execution.commission)
        assert "cash_mismatch" not in [kind for kind, _ in alerts(events)]


async def _bought_with_no_commission(sim: SimGateway, config: EngineConfig) -> None:
    """A first run buys 5 AAPL, filled; its commission is not reported (neither live nor in the executions' answer)
    until the test clears the simulator's faults."""
    sim.control.drop_messages("commission", -1)
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="first quote")
        order = await first.submit(buy(5))
        await eventually(lambda: status(first, order.order_ref) is S.FILLED, what="filled")


async def test_restart_when_a_commission_adopted_in_cash_comes_only_on_a_later_run_then_not_taken_off_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # Which fills the adopted cash already had the commission of was remembered for one run only: recovered on the
    # next, the commission was taken off cash again, and the start-up check adopted the broker's cash once more with a
    # false cash_mismatch warning (ours 999,213.66, the broker's 999,214.01).
    config = make_config(tmp_path, book_settle_s=0.2)
    await _bought_with_no_commission(sim, config)
    (execution,) = sim.executions()
    async with running(sim, config) as (second, events):  # the broker's cash adopted, the commission still missing
        assert "cash_mismatch" in [kind for kind, _ in alerts(events)]
        assert second.orders.fills[execution.exec_id].commission is None
    sim.control.clear_faults()

    async with running(sim, config) as (third, events):  # the commission recovered from the executions
        await eventually(lambda: third.orders.fills[execution.exec_id].commission is not None, what="commission")
        said = [kind for kind, _ in alerts(events)]
        cash, commissions = third.portfolio.cash, third.portfolio.commissions

    assert "cash_mismatch" not in said
    assert (cash, commissions) == (pytest.approx(sim.cash, abs=0.01), pytest.approx(execution.commission))


async def test_restart_when_cash_adopted_again_before_an_earlier_adopted_commission_came_then_neither_taken_twice(
        sim: SimGateway, tmp_path: Path) -> None:
    # Adopted again on a later start (another commission missing), the broker's cash had both commissions off: only
    # what it was below ours (the new one) was held back from cash, and the earlier one, already in the cash adopted
    # before, was taken off again when both came.
    config = make_config(tmp_path, book_settle_s=0.2)
    await _bought_with_no_commission(sim, config)
    async with running(sim, config) as (second, _):  # the broker's cash adopted; another fill, its commission missing
        await eventually(lambda: "AAPL" in second.market.quotes, what="first quote")
        order = await second.submit(buy(5))
        await eventually(lambda: status(second, order.order_ref) is S.FILLED, what="filled")

    async with running(sim, config) as (third, events):  # adopted again, then both commissions recovered
        assert [kind for kind, _ in alerts(events)].count("cash_mismatch") == 1
        sim.control.clear_faults()
        await third.reconcile("test")
        assert all(f.commission is not None for f in third.orders.fills.values())
        cash, commissions = third.portfolio.cash, third.portfolio.commissions

    assert (cash, commissions) == (pytest.approx(sim.cash, abs=0.01),  # the cash adopted is sent to the cent
                                   pytest.approx(sum(e.commission for e in sim.executions())))


async def test_restart_after_a_crash_when_an_adopted_commission_came_after_the_last_checkpoint_then_not_taken_twice(
        sim: SimGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The commission came and the engine died before a checkpoint: the next start replays it from the journal, and
    # the replay took it off the adopted cash again (one commission short, a false cash_mismatch).
    config = make_config(tmp_path, book_settle_s=0.2)
    await _bought_with_no_commission(sim, config)
    async with running(sim, config) as (second, _):  # the broker's cash adopted, then the commission recovered
        monkeypatch.setattr(second, "checkpoint_book", lambda reason: None)  # it dies before any checkpoint
        sim.control.clear_faults()
        await second.reconcile("test")
        assert all(f.commission is not None for f in second.orders.fills.values())
    monkeypatch.undo()

    async with running(sim, config) as (third, events):
        said = [kind for kind, _ in alerts(events)]
        cash = third.portfolio.cash

    assert "cash_mismatch" not in said
    assert cash == pytest.approx(sim.cash, abs=0.01)  # the cash adopted is sent to the cent


async def test_reconcile_fails_after_one_was_asked_for_during_it_then_the_request_is_not_lost(
        sim: SimGateway, tmp_path: Path) -> None:
    # The schedule's reconciliation (after the gateway's restart window) was running when an order went UNKNOWN; the
    # reconciliation its ack watcher asked for was folded into the running one ("once more"), which then timed out:
    # the request went with it, nothing asked again, and the order stayed UNKNOWN with entries blocked for good.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.3)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes, what="first quote")
        sim.control.drop_messages("open_orders_end", 1)  # the running reconciliation's open orders go unanswered
        running_one = asyncio.create_task(eng.reconcile("schedule window over"))
        await eventually(lambda: eng._reconciling, what="the reconciliation running")
        sim.control.drop_messages("open_order", 1)
        sim.control.drop_messages("order_status", 1)
        limit = round(eng.market.quotes["AAPL"].bid - 1.0, 2)
        order = await eng.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
        await eventually(lambda: status(eng, order.order_ref) is S.UNKNOWN, what="no acknowledgement: UNKNOWN")

        with pytest.raises(TimeoutError):
            await running_one

        await eventually(lambda: status(eng, order.order_ref) is S.SUBMITTED and "unknown_orders" not in eng.blocks,
                         what="settled by the reconciliation asked for")


async def test_cancel_race_answers_back_to_back_then_one_reconciliation_reads_them_all(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Each 10148 of a cancel race asked for a reconciliation of its own: the second, asked before the first had
    # started, made a second run that read nothing the first would not have.
    caplog.set_level(logging.INFO, logger="tui_trader.engine.reconcile")
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: quiet(eng), what="the connect's reconciliation over")
        caplog.clear()

        cancels_overtaken(sim, 901, 902, 903)

        await eventually(lambda: runs(caplog) and quiet(eng), what="the reconciliation asked for run and over")
        assert runs(caplog) == ["cancel race 10148 on 901"]


async def test_reconcile_asked_during_a_run_then_exactly_one_more_run_after_it(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Coalescing must not fold a request into a run that had already read the broker: a request during a run
    # (two here) gets one run that starts after it.
    caplog.set_level(logging.INFO, logger="tui_trader.engine.reconcile")
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: quiet(eng), what="the connect's reconciliation over")
        caplog.clear()
        sim.control.delay_messages("open_orders_end", 30)  # the first run waits for its open orders
        cancels_overtaken(sim, 901)
        await eventually(lambda: eng._reconciling, what="the first run waiting for the broker")

        cancels_overtaken(sim, 902, 903)
        await eventually(lambda: eng._reconcile_again, what="the requests during it heard")
        sim.control.clear_faults()
        sim.control.step(30)  # the open orders are answered

        await eventually(lambda: len(runs(caplog)) == 2 and quiet(eng), what="both runs over")
        assert runs(caplog) == ["cancel race 10148 on 901", "requested during a reconciliation"]
