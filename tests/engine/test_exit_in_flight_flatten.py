"""A flatten asked while an earlier exit of the symbol is still on its way (journaled as SENDING, the broker's answer
not yet heard): the position is closed once, not twice (a LONG 10 sold by both would be SHORT 10).

A guard, not a fix: an exit is bound to its broker id as it is written to the socket (``_place_family``), so the
flatten's cancel of the symbol's working orders names it and reaches the broker after it; one still waiting for the
journal is not on the wire, counts as the symbol's protection, and the flatten waits for it to end, then sends only
what the position still holds."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import (
    alerts_said,
    answer_the_stops_cancel,
    asked_open_orders,
    bracket_buy,
    eventually,
    journal_held,
    make_config,
    running,
    status,
    waiting_for_the_stops_cancel,
)

S = OrderStatus
HELD = ("open_order", "order_status", "execution", "commission", "error")
"""Every answer of the broker to an order: its acknowledgement, its fills, a cancel's outcome."""


async def _long_with_an_exit_awaiting_approval(sim: SimGateway, eng: Engine) -> tuple[str, str]:
    """AAPL LONG 10 with no stop, and a strategy's exit of it waiting for approval: the entry's and the exit's refs."""
    await eventually(lambda: "AAPL" in eng.market.quotes)
    entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT))
    eng.approve(entry.order_ref)
    await eventually(lambda: eng.portfolio.quantity("AAPL") == 10, what="LONG 10")
    await eng.close_position("AAPL", "exit signal", "ema_cross")
    (exit_order,) = eng.exits_pending("AAPL")
    return entry.order_ref, exit_order.order_ref


@pytest.mark.parametrize("fills", [True, False], ids=["exit-filled-unheard", "exit-working-unheard"])
async def test_flatten_while_an_exit_placed_awaits_its_ack_then_it_cancels_the_exit_and_closes_the_position_once(
        sim: SimGateway, tmp_path: Path, fills: bool) -> None:
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, _):
        entry_ref, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        if not fills:
            quote = sim.quote("AAPL")
            sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # one share fills, the rest works
        for kind in HELD:
            sim.control.delay_messages(kind, 60)
        eng.approve(exit_ref)
        await eventually(lambda: exit_ref in sim.order_refs(), what="the exit at the broker")
        assert status(eng, exit_ref) is S.SENDING

        flattening = asyncio.create_task(eng.flatten(preview=False))
        await eventually(lambda: exit_ref in eng.cancels_asked, what="the exit cancelled for the flatten")
        for kind in HELD:
            sim.control.delay_messages(kind, 0)
        sim.control.step(61)  # the broker's answers, late
        if not fills:
            quote = sim.quote("AAPL")
            sim.control.set_quote("AAPL", quote.bid, quote.ask)  # the flatten can fill
        await flattening

        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0 and not eng.orders.working(), what="flat")
        assert "AAPL" not in sim.positions()
        flattens = [o for o in eng.orders.orders.values() if o.ticket.strategy == "flatten"]
        if fills:  # already flat when the exit's fill was heard: nothing more sent
            assert (sim.order_refs(), status(eng, exit_ref), flattens) == ([entry_ref, exit_ref], S.FILLED, [])
        else:  # the exit cancelled after its one share: the flatten sells the 9 left
            (flatten,) = flattens
            assert (status(eng, exit_ref), flatten.ticket.quantity, flatten.status) == (S.CANCELLED, 9, S.FILLED)
            assert sim.order_refs() == [entry_ref, exit_ref, flatten.order_ref]


async def test_flatten_while_an_exit_waits_for_the_journal_unplaced_then_the_flatten_waits_for_it_and_sends_nothing(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, _):
        entry_ref, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        sim.control.delay_messages("open_orders_end", 60)  # the flatten's look at the broker, held
        with journal_held(eng):
            eng.approve(exit_ref)
            await eventually(lambda: status(eng, exit_ref) is S.SENDING, what="the exit waiting for the journal")
            sim.received_frames.clear()
            flattening = asyncio.create_task(eng.flatten(preview=False))
            await eventually(lambda: asked_open_orders(sim), what="the flatten past its cancels, at the held look")
            assert eng.orders.orders[exit_ref].broker_id is None  # not placed: nothing to cancel by id
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="the exit placed and filled")
        sim.control.delay_messages("open_orders_end", 0)
        sim.control.step(61)
        await flattening

        assert "AAPL" not in sim.positions()
        assert sim.order_refs() == [entry_ref, exit_ref]
        assert not [o for o in eng.orders.orders.values() if o.ticket.strategy == "flatten"]



@pytest.mark.parametrize("placed", [True, False], ids=["exit-cancel-unanswered", "exit-waiting-for-the-journal"])
async def test_flatten_while_an_earlier_exit_does_not_end_then_not_sent_and_the_alert_names_that_exit_and_its_cancel(
        sim: SimGateway, tmp_path: Path, placed: bool) -> None:
    # The flatten waited on the earlier exit (reduce-only, counted with the protection) and gave it up saying "AAPL's
    # protective orders are not confirmed cancelled (the broker has not answered)": AAPL had none, what still worked
    # was that exit, and the exit still waiting for the journal was never asked to cancel (not at the broker yet).
    config = make_config(tmp_path, approvals_required=True, approval_timeout_s=60, ack_timeout_s=0.2)
    async with running(sim, config) as (eng, events):
        _, exit_ref = await _long_with_an_exit_awaiting_approval(sim, eng)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # one share fills, the rest works
        sim.control.ignore_cancels()
        with journal_held(eng) if not placed else contextlib.nullcontext():
            eng.approve(exit_ref)
            working = S.PARTIALLY_FILLED if placed else S.SENDING
            await eventually(lambda: status(eng, exit_ref) is working, what="the exit not ended")
            events.drain()

            await eng.flatten(preview=False)

        assert not [o for o in eng.orders.orders.values() if o.ticket.strategy == "flatten"]
        how = ("the broker has not answered its cancel" if placed else
               "not asked to cancel: not at the broker yet when the cancels went")
        assert [a.text for a in alerts_said(events, kind="exit_not_sent")] == [
            f"flatten of AAPL not sent: AAPL's exit {exit_ref} has not ended ({how}); reconciliation will settle it"]


@pytest.mark.parametrize(("first", "rests"), [("ema_cross", False), ("ema_cross", True), ("flatten", False),
                                               ("flatten", True)],
                         ids=["exit-first", "exit-first-closing-order-rests", "flatten-first",
                              "flatten-first-closing-order-rests"])
async def test_flatten_and_a_strategy_exit_both_waiting_for_one_stops_cancel_then_one_closes_the_other_leaves_it(
        sim: SimGateway, tmp_path: Path, first: str, rests: bool) -> None:
    # Both wait for the same stop to end and wake on the same order change. Whichever waited first looks first and
    # makes its closing order with nothing awaited before it; the other must not send one beside it (a LONG 10 sold by
    # both would be SHORT 10). It waited on that order as on protection: resting (no bid), it was given up after five
    # acknowledgement timeouts with a CRITICAL "... not sent: AAPL's exit X has not ended" and a reconciliation, for
    # the order closing the position. Now it leaves the position to that order, and nothing is said; the operator's
    # flatten waits for it to end (it closes what a rejected one leaves), and still working then, it is left to it too,
    # said in a WARNING: no CRITICAL, no reconciliation.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.2)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        events.drain()
        asks = {"ema_cross": lambda: eng.close_position("AAPL", "exit signal", "ema_cross"),
                "flatten": lambda: eng.flatten(preview=False)}
        waiting = await waiting_for_the_stops_cancel(sim, *(asks[who] for who in (first, *(set(asks) - {first}))))
        answer_the_stops_cancel(sim)
        quote = sim.quote("AAPL")
        if rests:
            sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # one share fills, the rest rests
        await asyncio.gather(*waiting)

        (closing,) = [o for o in eng.orders.orders.values() if o.ticket.order_type is OrderType.MKT
                      and o.ticket.side is Side.SELL]
        assert closing.ticket.strategy == first
        left = [(AlertLevel.WARNING, f"flatten of AAPL not sent: left to AAPL's exit {closing.order_ref}, made as it "
                 "waited and still working; the position closes as it fills")] if first != "flatten" and rests else []
        assert [(a.level, a.text) for a in alerts_said(events)] == left
        sim.control.set_quote("AAPL", quote.bid, quote.ask)
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0 and not eng.orders.working(), what="flat")
        assert "AAPL" not in sim.positions()
        assert status(eng, closing.order_ref) is S.FILLED
        assert [r.order_ref for r in sim.received_orders() if r.action == Side.SELL.value] == [
            stop.order_ref, closing.order_ref]


async def test_flatten_of_two_symbols_when_an_exit_of_the_second_is_made_as_it_waits_for_the_first_then_left_to_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The flatten noted the exits already there as it came to each symbol, not as its cancels went: MSFT's exit, made
    # as it waited for AAPL's stop, counted as there before. Resting (no bid), it was given up after five
    # acknowledgement timeouts with a CRITICAL "MSFT's exit X has not ended (not asked to cancel: not at the broker yet
    # when the cancels went)" and a reconciliation. Now it is an exit made as the flatten waited: left to, said once.
    async with running(sim, make_config(tmp_path, ack_timeout_s=1)) as (eng, events):
        await eventually(lambda: {"AAPL", "MSFT"} <= set(eng.market.quotes))
        stop = await bracket_buy(sim, eng)
        await eng.submit(OrderTicket("MSFT", Side.BUY, 10, OrderType.MKT))  # no stop: nothing of MSFT's to wait for
        await eventually(lambda: eng.portfolio.quantity("MSFT") == 10, what="MSFT LONG 10")
        events.drain()
        sim.control.ignore_cancels(True)  # the flatten waits for AAPL's stop to end
        sim.received_frames.clear()
        flattening = asyncio.create_task(eng.flatten(preview=False))
        await eventually(lambda: asked_open_orders(sim), what="the flatten past its cancels, waiting")
        quote = sim.quote("MSFT")
        sim.control.set_quote("MSFT", quote.bid, quote.ask, bid_size=0)  # one share fills, the rest rests
        await eng.close_position("MSFT", "exit signal", "ema_cross")
        (exit_order,) = eng.exits_pending("MSFT")
        await eventually(lambda: status(eng, exit_order.order_ref) is S.PARTIALLY_FILLED, what="MSFT's exit resting")
        sim.control.ignore_cancels(False)
        sim.control.cancel(stop.order_ref)  # AAPL's stop ends

        await flattening

        assert [(a.level, a.text) for a in alerts_said(events)] == [
            (AlertLevel.WARNING, f"flatten of MSFT not sent: left to MSFT's exit {exit_order.order_ref}, made as it "
             "waited and still working; the position closes as it fills")]
        (aapl,) = [o.order_ref for o in eng.orders.orders.values() if o.ticket.strategy == "flatten"]
        sim.control.set_quote("MSFT", quote.bid, quote.ask)
        await eventually(lambda: not eng.portfolio.open_positions() and not eng.orders.working(), what="flat")
        assert [r.order_ref for r in sim.received_orders() if r.action == Side.SELL.value] == [
            stop.order_ref, exit_order.order_ref, aapl]
