"""An exit the broker rejects after its position's protection was cancelled for it (QA: SPY LONG 10 left with no
order at the gateway after a rejection for margin, the alerts pane silent for minutes, the flatten recorded as
"sent"). Said CRITICAL at once, and the protection placed again as it was, once."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, Bracket, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.broker_events import HALT_OVER
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.risk.limits import TriggerAction
from tui_trader.sim import SimGateway

from .helpers import (
    CLIENT_ID,
    alerts_said,
    allow_journal_writes,
    answer_the_stops_cancel,
    asked_open_orders,
    bracket_buy,
    eventually,
    journal_fails,
    journal_held,
    limits_for_tests,
    make_config,
    quiet,
    refuse_journal_writes,
    running,
    status,
    waiting_for_the_stops_cancel,
    working_at_broker,
)

S = OrderStatus
MARGIN = "Order rejected - reason:Insufficient margin"


def _critical(events: Subscription) -> list[str]:
    return [a.text for a in alerts_said(events) if a.level is AlertLevel.CRITICAL]


def _sells(sim: SimGateway) -> list[str]:
    return [r.order_ref for r in sim.received_orders() if r.action == Side.SELL.value]


def _exit(engine: Engine, strategy: str) -> str:
    (order,) = [o for o in engine.orders.orders.values() if o.ticket.strategy == strategy and o.parent_ref is None
                and o.ticket.order_type is OrderType.MKT and o.ticket.reduce_only]
    return order.order_ref


def _placed_again(engine: Engine) -> list[tuple[OrderType, float, float | None, float | None]]:
    return [(o.ticket.order_type, o.ticket.quantity, o.ticket.stop_price, o.ticket.limit_price)
            for o in engine.protection_working("AAPL")]


async def test_strategy_exit_when_the_broker_rejects_it_then_its_stop_is_placed_again_and_said_critical(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN)

        await eng.close_position("AAPL", "exit signal", "ema_cross")

        exit_ref = _exit(eng, "ema_cross")
        await eventually(lambda: len(working_at_broker(sim)) == 1, what="a stop at the broker again")
        assert status(eng, exit_ref) is S.REJECTED
        assert status(eng, stop.order_ref) is S.CANCELLED
        assert sim.positions()["AAPL"] == 10
        assert _placed_again(eng) == [(OrderType.STP, 10, stop.ticket.stop_price, None)]
        (again,) = [o for o in sim.orders() if o.working]
        assert (again.order_type, again.action, again.total_qty, again.aux_price) == (
            "STP", "SELL", 10, stop.ticket.stop_price)
        assert _critical(events) == [
            f"exit of AAPL (exit signal) REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker (its protective "
            f"orders were cancelled for the exit); placing it again for 10: STP SELL @ {stop.ticket.stop_price:g}"]
        assert eng.portfolio.positions["AAPL"].stop_price == stop.ticket.stop_price


async def test_flatten_when_the_broker_rejects_it_then_stop_and_target_placed_again_and_the_action_says_rejected(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        quote = sim.quote("AAPL")
        stop_px, target_px = round(quote.bid * 0.9, 2), round(quote.ask * 1.1, 2)
        entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT,
                                             bracket=Bracket(stop_price=stop_px, take_profit_price=target_px)))
        await eventually(lambda: len(working_at_broker(sim)) == 2 and status(eng, entry.order_ref) is S.FILLED)
        events.drain()
        sim.control.reject_next(201, MARGIN)

        await eng.flatten(preview=False)

        close = _exit(eng, "flatten")
        assert status(eng, close) is S.REJECTED
        await eventually(lambda: len(working_at_broker(sim)) == 2, what="stop and target at the broker again")
        assert sorted(_placed_again(eng)) == sorted([(OrderType.STP, 10, stop_px, None),
                                                     (OrderType.LMT, 10, None, target_px)])
        groups = {o.oca_group for o in sim.orders() if o.working}
        assert len(groups) == 1  # one group: one fill cancels the other
        assert "" not in groups
        assert sim.positions()["AAPL"] == 10
        (critical,) = _critical(events)
        assert critical.startswith(f"flatten of AAPL REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker")
        assert not alerts_said(events, kind="flatten_not_sent")  # the CRITICAL said it
        await eventually(lambda: eng.journal is not None and eng.journal.backlog == 0, what="journaled")
        assert eng.journal is not None
        with closing(sqlite3.connect(eng.journal.path)) as db:
            (after,) = db.execute("SELECT after FROM operator_actions WHERE action = 'flatten'").fetchone()
        assert after == f"AAPL SELL 10 REJECTED by the broker ({close}): {MARGIN}"


async def test_exit_when_its_stop_placed_again_is_rejected_too_then_said_unprotected_once_and_not_tried_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker rejects the exit and the stop placed again alike (a halt did, until the engine heard halts: it
    # now denies an exit in a halted symbol before anything is cancelled).
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await bracket_buy(sim, eng)
        events.drain()
        sells_before = len(_sells(sim))
        sim.control.reject_next(201, MARGIN, count=2)

        await eng.close_position("AAPL", "exit signal", "ema_cross")

        said: list[str] = []
        await eventually(lambda: said.extend(_critical(events)) or len(said) == 2, what="both CRITICAL alerts")
        rejected = [o for o in eng.orders.orders.values() if o.ticket.order_type is OrderType.STP
                    and o.parent_ref is None]
        assert [o.status for o in rejected] == [S.REJECTED]
        stop_px = rejected[0].ticket.stop_price
        assert said == [
            f"exit of AAPL (exit signal) REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker (its protective "
            f"orders were cancelled for the exit); placing it again for 10: STP SELL @ {stop_px:g}",
            f"{rejected[0].order_ref} (STP SELL 10 AAPL), placed again after exit of AAPL (exit signal), REJECTED "
            f"({MARGIN}): AAPL LONG 10 is UNPROTECTED, no stop at the broker; not tried again: engage the kill switch "
            "(Ctrl+K), flatten it (f) or place a stop in TWS"]
        await eng.reconcile("a pass")  # nothing more is placed, nor said
        assert not working_at_broker(sim)
        assert len(_sells(sim)) - sells_before == 2  # the exit, the stop placed again: once
        assert not _critical(events)


async def _exit_working_after_one_share(sim: SimGateway, eng: Engine) -> tuple[Order, str]:
    """AAPL LONG 10 with its stop, and a strategy's exit working at the broker after one share sold (the simulator's
    bid shows one share: ``sim.control.set_quote`` with the quote's prices lets the rest fill): the stop cancelled
    for it, and the exit's ref."""
    await eventually(lambda: "AAPL" in eng.market.quotes)
    stop = await bracket_buy(sim, eng)
    quote = sim.quote("AAPL")
    sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # the simulator fills one share, no more
    await eng.close_position("AAPL", "exit signal", "ema_cross")
    exit_ref = _exit(eng, "ema_cross")
    await eventually(lambda: eng.portfolio.quantity("AAPL") == 9, what="one share sold")
    return stop, exit_ref


async def test_exit_when_cancelled_after_a_partial_fill_then_its_stop_is_placed_again_for_what_remains(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (eng, events):
        stop, exit_ref = await _exit_working_after_one_share(sim, eng)
        events.drain()

        await eng.cancel(exit_ref)

        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 9, stop.ticket.stop_price, None)],
                         what="a stop for the 9 left")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 9},
                         what="working at the broker")
        assert status(eng, exit_ref) is S.CANCELLED
        (critical,) = _critical(events)
        assert critical.startswith("exit of AAPL (exit signal) CANCELLED")
        assert "AAPL LONG 9 has no stop at the broker" in critical


async def _long_with_an_exit_awaiting_approval(sim: SimGateway, eng: Engine) -> tuple[float, str]:
    """AAPL LONG 10 bought (approved) with its stop at the broker, and the maximum holding time's close awaiting
    approval: the stop's price and the close's ref."""
    await eventually(lambda: "AAPL" in eng.market.quotes)
    stop_px = round(sim.quote("AAPL").bid * 0.9, 2)
    entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT, bracket=Bracket(stop_price=stop_px)))
    eng.approve(entry.order_ref)
    await eventually(lambda: len(working_at_broker(sim)) == 1 and eng.portfolio.quantity("AAPL") == 10)
    await eng.close_position("AAPL", "maximum holding time reached", "max_holding")
    return stop_px, _exit(eng, "max_holding")


async def test_approved_exit_when_the_broker_rejects_it_then_its_stop_is_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, events):
        stop_px, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN)

        eng.approve(exit_ref)

        await eventually(lambda: status(eng, exit_ref) is S.REJECTED, what="the exit rejected")
        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 10, stop_px, None)], what="its stop again")
        await eventually(lambda: len(working_at_broker(sim)) == 1, what="at the broker")
        (critical,) = _critical(events)
        assert critical.startswith(f"exit {exit_ref} REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker")


async def test_flatten_while_an_approved_exit_waits_for_the_journal_when_both_rejected_then_the_stop_is_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The approved exit had its stop cancelled and waited for the journal before the wire; the flatten asked then
    # dropped the stop's record as a leftover of an earlier exit, and kept none of its own (the stop was gone). Both
    # rejected, LONG 10 was left with no stop at the broker, and no alert said so.
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, events):
        stop_px, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN, count=2)
        with journal_held(eng):
            eng.approve(exit_ref)
            await eventually(lambda: status(eng, exit_ref) is S.SENDING and not working_at_broker(sim),
                             what="the stop cancelled, the exit waiting for the journal")
            sim.control.delay_messages("open_orders_end", 60)  # the flatten's look at the broker, held
            sim.received_frames.clear()
            flattening = asyncio.create_task(eng.flatten(preview=False))
            await eventually(lambda: asked_open_orders(sim), what="the flatten past its cancels, at the held look")
        await eventually(lambda: status(eng, exit_ref) is S.REJECTED, what="the exit placed and rejected")
        sim.control.delay_messages("open_orders_end", 0)
        sim.control.step(61)
        await flattening

        assert status(eng, _exit(eng, "flatten")) is S.REJECTED
        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 10, stop_px, None)], what="its stop again")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 10},
                         what="working at the broker")
        assert sim.positions()["AAPL"] == 10
        (critical,) = _critical(events)
        assert critical.startswith(f"flatten of AAPL REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker")
        assert critical.endswith(f"placing it again for 10: STP SELL @ {stop_px:g}")


async def test_flatten_while_a_strategy_exit_waits_for_the_journal_when_both_rejected_then_the_stop_is_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # As an approved exit's: a strategy's exit was given its stop's record only once its submit returned, and a
    # submit waits for the journal after a failed write (trading goes on: the journal-failure action is an alert).
    # The flatten meanwhile dropped the record as an earlier exit's leftover; both rejected, LONG 10 was left with no
    # stop at the broker, and no alert said so.
    config = make_config(tmp_path, limits=limits_for_tests(journal_failure_action=TriggerAction.ALERT))
    assert config.journal_path is not None
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        refuse_journal_writes(config.journal_path)
        await journal_fails(eng)
        events.drain()
        sim.control.reject_next(201, MARGIN, count=2)
        allow_journal_writes(config.journal_path)
        with journal_held(eng):
            closing_task = asyncio.create_task(eng.close_position("AAPL", "exit signal", "ema_cross"))
            await eventually(lambda: any(o.ticket.strategy == "ema_cross" and o.status is S.SENDING
                                         for o in eng.orders.orders.values()) and not working_at_broker(sim),
                             what="the stop cancelled, the exit waiting for the journal")
            sim.control.delay_messages("open_orders_end", 60)  # the flatten's look at the broker, held
            sim.received_frames.clear()
            flattening = asyncio.create_task(eng.flatten(preview=False))
            await eventually(lambda: asked_open_orders(sim), what="the flatten past its cancels, at the held look")
        await closing_task
        await eventually(lambda: status(eng, _exit(eng, "ema_cross")) is S.REJECTED, what="the exit rejected")
        sim.control.delay_messages("open_orders_end", 0)
        sim.control.step(61)
        await flattening

        assert status(eng, _exit(eng, "flatten")) is S.REJECTED
        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 10, stop.ticket.stop_price, None)],
                         what="its stop again")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 10},
                         what="working at the broker")
        assert sim.positions()["AAPL"] == 10
        (critical,) = _critical(events)
        assert critical.startswith(f"flatten of AAPL REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker")


async def test_flatten_while_a_strategy_exit_waits_for_its_stops_cancel_then_the_rejected_exit_places_no_stop_beside_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The flatten dropped the waiting exit's record of the stop and kept one of its own, shared by symbol: the exit,
    # once the stop had ended, took the flatten's. Rejected, it said CRITICAL that LONG 10 had no stop and placed the
    # stop again as the flatten went out: a stop beside a closing order (denied here by the gate, the flatten working
    # already; placed first, the flatten waited on it and gave up).
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN)
        waiting = await waiting_for_the_stops_cancel(
            sim, lambda: eng.close_position("AAPL", "exit signal", "ema_cross"), lambda: eng.flatten(preview=False))

        answer_the_stops_cancel(sim)  # the exit goes, and is rejected
        await asyncio.gather(*waiting)

        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="flat")
        assert status(eng, _exit(eng, "ema_cross")) is S.REJECTED
        assert status(eng, _exit(eng, "flatten")) is S.FILLED
        assert "AAPL" not in sim.positions()
        assert not working_at_broker(sim)
        assert [o.order_ref for o in eng.orders.orders.values() if o.ticket.order_type is OrderType.STP] == [
            stop.order_ref]  # none placed again
        # Nothing said: the stop ended, and a cancel check names none of the symbol's protection (its exit's wait does).
        assert _critical(events) == []


async def test_strategy_exit_left_to_a_flatten_made_as_it_waited_when_that_is_rejected_then_the_stop_is_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The exit waited for the stop's cancel beside a flatten that looked first; it leaves the position to the flatten's
    # closing order, and hands it the record of the stop it took over from the flatten: rejected, the position is not
    # left LONG 10 with nothing at the broker (the flatten's record was the exit's, its own end decided nothing).
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN)
        waiting = await waiting_for_the_stops_cancel(
            sim, lambda: eng.flatten(preview=False), lambda: eng.close_position("AAPL", "exit signal", "ema_cross"))

        answer_the_stops_cancel(sim)  # the flatten goes, and is rejected
        await asyncio.gather(*waiting)

        flatten = _exit(eng, "flatten")
        assert status(eng, flatten) is S.REJECTED
        assert [o for o in eng.orders.orders.values() if o.ticket.strategy == "ema_cross"] == []
        (again,) = [o for o in eng.orders.orders.values() if o.ticket.order_type is OrderType.STP
                    and o.order_ref != stop.order_ref]
        await eventually(lambda: again.order_ref in working_at_broker(sim), what="the stop placed again")
        assert eng.portfolio.quantity("AAPL") == 10
        assert _critical(events) == [
            f"exit {flatten} REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker (its protective orders were "
            f"cancelled for the exit); placing it again for 10: STP SELL @ {stop.ticket.stop_price:g}"]


async def test_approved_exit_given_up_as_its_stops_cancel_went_unanswered_then_the_stop_is_placed_again_once_ended(
        sim: SimGateway, tmp_path: Path) -> None:
    # As a strategy's exit and a flatten: not sent, its stop remembered until it is known to have ended (the broker's
    # late answer, or the reconciliation the exit asked for), then placed again once.
    config = make_config(tmp_path, ack_timeout_s=0.2, approvals_required=True, approval_timeout_s=60)
    async with running(sim, config) as (eng, events):
        stop_px, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        (stop,) = eng.protection_working("AAPL")
        events.drain()
        for kind in ("order_status", "error"):  # the broker's answer to the stop's cancel held back
            sim.control.delay_messages(kind, 60)

        eng.approve(exit_ref)

        await eventually(lambda: status(eng, exit_ref) is S.CANCELLED, what="the exit given up")
        for kind in ("order_status", "error"):
            sim.control.delay_messages(kind, 0)
        sim.control.step(61)  # the cancel's answer, late (unless the reconciliation the exit asked for found it first)
        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 10, stop_px, None)], what="its stop again")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 10},
                         what="working at the broker")
        assert status(eng, stop.order_ref) is S.CANCELLED
        assert sim.positions()["AAPL"] == 10
        assert [a.text for a in alerts_said(events) if a.kind in ("exit_not_sent", "exit_unprotected")] == [
            f"exit {exit_ref} not sent: AAPL's protective orders are not confirmed cancelled (the broker has not "
            "answered); reconciliation will settle them, and the position may be left without them",
            f"exit {exit_ref} not sent (its protective orders' cancel was not confirmed in time): AAPL LONG 10 has no "
            "stop at the broker (its protective orders were cancelled for the exit); placing it again for 10: STP SELL "
            f"@ {stop_px:g}"]
        await eng.reconcile("a pass")  # placed once: nothing more is placed, nor said
        assert len(working_at_broker(sim)) == 1
        assert not _critical(events)


async def test_approved_exit_lapsed_as_its_stops_cancel_was_awaited_then_the_stop_is_placed_again_and_said_critical(
        sim: SimGateway, tmp_path: Path) -> None:
    # The run ended (its unsent orders lapsed) while the approved exit waited for its stop's cancel: the exit was not
    # sent, and LONG 10 was left with no stop at the broker, said only as a WARNING; nothing placed the stop again.
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, events):
        stop_px, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        (stop,) = eng.protection_working("AAPL")
        events.drain()
        for kind in ("order_status", "error"):  # the broker's answer to the stop's cancel held back
            sim.control.delay_messages(kind, 60)
        eng.approve(exit_ref)
        await eventually(lambda: not working_at_broker(sim), what="the stop cancelled at the broker")

        eng.lapse_unsent("the run ended")
        for kind in ("order_status", "error"):
            sim.control.delay_messages(kind, 0)
        sim.control.step(61)  # the cancel's answer

        await eventually(lambda: status(eng, stop.order_ref) is S.CANCELLED, what="the stop's cancel heard")
        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 10, stop_px, None)], what="its stop again")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 10},
                         what="working at the broker")
        assert status(eng, exit_ref) is S.EXPIRED
        assert sim.positions()["AAPL"] == 10
        assert [a.text for a in alerts_said(events) if a.kind in ("exit_not_sent", "exit_unprotected")] == [
            f"exit {exit_ref} EXPIRED (not sent: the run ended): AAPL LONG 10 has no stop at the broker (its "
            f"protective orders were cancelled for the exit); placing it again for 10: STP SELL @ {stop_px:g}"]


async def _stop_waiting_for_the_resume(sim: SimGateway, eng: Engine, events: Subscription) -> Order:
    """AAPL bought with a stop and a target; an exit, with a halt landing between its stop's cancel and its send:
    the exit and the stop placed again are both denied, the stop to go again as AAPL resumes. The stop returned."""
    stop = await bracket_buy(sim, eng)
    events.drain()
    for kind in ("order_status", "error"):  # the broker's answer to the stop's cancel held back
        sim.control.delay_messages(kind, 60)
    closing_task = asyncio.create_task(eng.close_position("AAPL", "exit signal", "ema_cross"))
    await eventually(lambda: not working_at_broker(sim), what="the protection cancelled at the broker")
    sim.control.halt("AAPL")
    await eventually(lambda: eng.market.quotes["AAPL"].halted, what="the halt heard")
    for kind in ("order_status", "error"):
        sim.control.delay_messages(kind, 0)

    sim.control.step(61)  # the cancel's answer: the exit is checked again, now in a halt
    await closing_task
    said: list[str] = []
    await eventually(lambda: said.extend(_critical(events)) or len(said) == 2, what="both CRITICAL alerts")
    assert "placed again when AAPL resumes" in said[1]
    assert not working_at_broker(sim)
    return stop


def _stop_again_at_the_broker(sim: SimGateway, stop: Order) -> None:
    (again,) = [o for o in sim.orders() if o.working]
    assert (again.order_type, again.action, again.total_qty, again.aux_price) == (
        "STP", "SELL", 10, stop.ticket.stop_price)
    assert sim.positions()["AAPL"] == 10


@pytest.mark.parametrize("how", ["strategy exit", "flatten"])
async def test_exit_given_up_as_its_stops_cancel_went_unanswered_then_the_stop_is_placed_again_once_it_has_ended(
        sim: SimGateway, tmp_path: Path, how: str) -> None:
    # The exit gave up waiting for its stop's cancel and nothing remembered the stop: looked at then, it still
    # worked. The broker's late answer (or the reconciliation) then ended it, and LONG 10 was left with no stop.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.2)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        events.drain()
        for kind in ("order_status", "error"):  # the broker's answer to the stop's cancel held back
            sim.control.delay_messages(kind, 60)

        if how == "flatten":
            await eng.flatten(preview=False)
        else:
            await eng.close_position("AAPL", "exit signal", "ema_cross")

        for kind in ("order_status", "error"):
            sim.control.delay_messages(kind, 0)
        assert not working_at_broker(sim)
        assert status(eng, stop.order_ref) is S.SUBMITTED  # given up: its cancel unanswered
        sim.control.step(61)  # the cancel's answer, late
        await eventually(lambda: len(working_at_broker(sim)) == 1, what="the stop at the broker again")
        _stop_again_at_the_broker(sim, stop)
        what = "flatten of AAPL" if how == "flatten" else "exit (exit signal)"
        assert [a.text for a in alerts_said(events) if a.kind in ("exit_not_sent", "exit_unprotected")] == [
            f"{what} not sent: AAPL's protective orders are not confirmed cancelled (the broker has not answered); "
            "reconciliation will settle them, and the position may be left without them",
            f"{what} not sent (its protective orders' cancel was not confirmed in time): AAPL LONG 10 has no stop at "
            "the broker (its protective orders were cancelled for the exit); placing it again for 10: STP SELL @ "
            f"{stop.ticket.stop_price:g}"]
        assert status(eng, stop.order_ref) is S.CANCELLED
        await eng.reconcile("a pass")  # placed once: nothing more is placed, nor said
        assert len(working_at_broker(sim)) == 1
        assert not _critical(events)


async def test_exit_given_up_as_its_stops_cancel_went_unanswered_when_the_broker_still_works_it_then_not_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker never acted on the stop's cancel: the reconciliation the exit asked for finds the stop working, the
    # position protected. Remembered still, the exit's record placed the stop again when the operator cancelled it in
    # TWS later, said CRITICAL as if the exit had left the position bare.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.2)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        sim.control.ignore_cancels()
        await eng.close_position("AAPL", "exit signal", "ema_cross")
        await eventually(lambda: quiet(eng), what="the reconciliation the exit asked for")
        sim.control.ignore_cancels(False)
        assert status(eng, stop.order_ref) is S.SUBMITTED
        assert working_at_broker(sim) == {stop.order_ref: 10}
        events.drain()

        sim.control.cancel(stop.order_ref)  # in TWS

        said: list[str] = []
        await eventually(lambda: said.extend(a.text for a in alerts_said(events, kind="protection_lost")) or said,
                         what="the stop's end said, unasked")
        assert said == [f"AAPL 10 has no protective order at the broker: {stop.order_ref} (STP SELL) ended CANCELLED "
                        "(Cancelled) and nothing replaces it"]
        assert not working_at_broker(sim)  # not placed again
        assert not _critical(events)


async def test_exit_when_a_halt_lands_between_its_stops_cancel_and_its_send_then_the_stop_goes_again_as_it_resumes(
        sim: SimGateway, tmp_path: Path) -> None:
    # The halt came after the exit had its stop cancelled: the exit and the stop placed again were both denied (a
    # halted symbol's orders are), "not tried again", and the halt's end left the position bare as trading reopened.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await _stop_waiting_for_the_resume(sim, eng, events)

        sim.control.resume("AAPL")

        await eventually(lambda: len(working_at_broker(sim)) == 1, what="the stop at the broker again")
        _stop_again_at_the_broker(sim, stop)


async def test_flatten_rejected_while_an_exit_awaits_approval_then_a_second_flatten_cancelled_then_stop_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The rejected flatten left its stop's record with the exit awaiting approval; that exit was turned down while a
    # second flatten worked at the broker, counted as protection: the record was dropped, and when the broker
    # cancelled that flatten, LONG 9 was left with nothing at the broker and nothing said. (Now the rejected flatten
    # places its stop again at once: the second flatten cancels that stop, and its own end decides.)
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, events):
        stop_px, waiting = await _long_with_an_exit_awaiting_approval(sim, eng)
        sim.control.reject_next(201, MARGIN)
        await eng.flatten(preview=False)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # the simulator fills one share, no more
        await eng.flatten(preview=False)
        first, second = sorted((o for o in eng.orders.orders.values() if o.ticket.strategy == "flatten"),
                               key=lambda o: o.created_at)
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 9, what="one share sold")
        assert (first.status, status(eng, waiting), status(eng, second.order_ref)) == (
            S.REJECTED, S.PENDING_APPROVAL, S.PARTIALLY_FILLED)
        assert not working_at_broker(sim).keys() - {second.order_ref}
        events.drain()
        eng.reject(waiting)

        sim.control.cancel(second.order_ref)

        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 9, stop_px, None)], what="a stop for the 9")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 9},
                         what="working at the broker")
        (critical,) = _critical(events)
        assert critical.startswith("flatten of AAPL CANCELLED")
        assert f"AAPL LONG 9 has no stop at the broker (its protective orders were cancelled for the exit); placing " \
               f"it again for 9: STP SELL @ {stop_px:g}" in critical


async def test_exit_when_the_link_is_made_again_during_the_halt_then_the_stop_goes_again_only_as_it_resumes(
        sim: SimGateway, tmp_path: Path) -> None:
    # A reconnect's quotes came before IB's halted tick: read as "resumed", the stop went at once, was rejected by the
    # broker (AAPL still halted) and was not tried again as AAPL really resumed.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await _stop_waiting_for_the_resume(sim, eng, events)
        before, sent = eng.market.quotes["AAPL"], len(sim.received_orders())
        sim.control.delay_messages("halted", 60)  # the new subscription's halted tick comes after its prices

        # Act: the link lost and made again; IB's halted tick (1) after the new subscription's prices.
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: eng.reconnects == 1 and eng.market.quotes["AAPL"] is not before,
                         what="a quote after the reconnect")
        told = eng.market.quotes["AAPL"]
        sim.control.delay_messages("halted", 0)
        sim.control.step(61)
        await eventually(lambda: eng.market.quotes["AAPL"] is not told, what="the halted tick heard")

        # Assert: no resume said, nothing placed.
        assert [a.text for a in alerts_said(events) if a.kind == HALT_OVER or a.source == "protection"] == []
        assert len(sim.received_orders()) == sent

        # Act: AAPL resumes.
        sim.control.resume("AAPL")

        # Assert: said once, and the stop at the broker again.
        await eventually(lambda: len(working_at_broker(sim)) == 1, what="the stop at the broker again")
        _stop_again_at_the_broker(sim, stop)
        assert [a.text for a in alerts_said(events) if a.kind == HALT_OVER] == [
            "AAPL resumed: the trading halt at the exchange is over"]


async def test_flatten_while_a_strategy_exit_works_at_the_broker_then_the_flatten_goes_out_and_no_stop_beside_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The flatten cancelled the exit working at the broker; the exit's end, before the flatten's closing order
    # existed, placed its stop again, and the flatten waited for that stop to end: "NOT sent", a spurious CRITICAL.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        _, exit_ref = await _exit_working_after_one_share(sim, eng)
        events.drain()

        await eng.flatten(preview=False)

        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask)  # the rest can fill
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="the flatten filled")
        assert status(eng, exit_ref) is S.CANCELLED
        assert status(eng, _exit(eng, "flatten")) is S.FILLED
        assert not _critical(events)
        assert not working_at_broker(sim)
        assert not [o for o in eng.orders.orders.values() if o.ticket.order_type is OrderType.STP
                    and o.parent_ref is None]  # no stop placed again


async def test_flatten_rejected_after_it_cancelled_a_working_exit_then_the_exits_stop_is_placed_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # The cancelled exit handed its stop to the flatten: the flatten failing too places it again, said once.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        stop, exit_ref = await _exit_working_after_one_share(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN)

        await eng.flatten(preview=False)

        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 9, stop.ticket.stop_price, None)],
                         what="a stop for the 9 left")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 9},
                         what="working at the broker")
        assert (status(eng, exit_ref), status(eng, _exit(eng, "flatten"))) == (S.CANCELLED, S.REJECTED)
        assert _critical(events) == [
            f"flatten of AAPL REJECTED ({MARGIN}): AAPL LONG 9 has no stop at the broker (its protective orders were "
            f"cancelled for the exit); placing it again for 9: STP SELL @ {stop.ticket.stop_price:g}"]


async def test_flatten_rejected_while_an_exit_awaits_approval_then_its_stop_is_placed_again_now_and_said_critical(
        sim: SimGateway, tmp_path: Path) -> None:
    # The rejected flatten handed its stop's record to the exit awaiting approval, which protects nothing: the position
    # had no stop at the broker for as long as the approval could wait (minutes in live), and nothing said so.
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, events):
        stop_px, waiting = await _long_with_an_exit_awaiting_approval(sim, eng)
        events.drain()
        sim.control.reject_next(201, MARGIN)

        await eng.flatten(preview=False)

        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 10, stop_px, None)], what="its stop again")
        await eventually(lambda: working_at_broker(sim) == {eng.protection_working("AAPL")[0].order_ref: 10},
                         what="working at the broker")
        assert status(eng, waiting) is S.PENDING_APPROVAL
        (critical,) = _critical(events)
        assert critical.startswith(f"flatten of AAPL REJECTED ({MARGIN}): AAPL LONG 10 has no stop at the broker")
        assert critical.endswith(f"placing it again for 10: STP SELL @ {stop_px:g}")

        eng.approve(waiting)  # it cancels the stop placed again before it goes, as any approved exit

        await eventually(lambda: status(eng, waiting) is S.FILLED, what="the exit filled")
        assert eng.portfolio.quantity("AAPL") == 0
        assert not working_at_broker(sim)
        assert not _critical(events)


async def test_flatten_when_its_order_ends_after_the_flatten_said_it_sent_then_the_end_is_said_and_not_kept_for_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The flatten had said its order sent (working after one share) when the order ended: the CRITICAL of the stop
    # placed again said that end, and its ref was kept for the flatten to read, which never would: one per such
    # flatten, for the rest of the session.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # the simulator fills one share, no more
        await eng.flatten(preview=False)
        close = _exit(eng, "flatten")
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 9, what="one share sold")
        events.drain()

        await eng.cancel(close)

        await eventually(lambda: _placed_again(eng) == [(OrderType.STP, 9, stop.ticket.stop_price, None)],
                         what="a stop for the 9 left")
        (critical,) = _critical(events)
        assert critical.startswith("flatten of AAPL CANCELLED")
        assert not eng.flattens_unsaid
