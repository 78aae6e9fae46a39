"""A protective order larger than its position is cut to it also while a position mismatch holds trading HALTED.

With the default limits a position mismatch halts trading (the kill switch, tripped automatically: it keeps the
positions' protection). The likeliest reason a position shrinks behind tui-trader's back is the very one that trips
it: 5 of a LONG 10 sold in TWS while tui-trader was stopped. At the restart the cuts of the bracket's stop and
target were denied by the trading state, each said CRITICAL, and the re-check every ``cut_recheck_s`` found the gate
still denying them, so the stop of 10 stayed at the broker under LONG 5: a fall through it sold 10 and left the
account SHORT 5. Only a cut passes the trip; nothing passes the operator's kill. Real engine against the simulator
over loopback, default limits.

The same sale made while tui-trader runs is the periodic position check's mismatch: the book stays ours (LONG 10), so
the stop of 10 "fitted" it and stayed at the broker under the broker's LONG 5. Once the mismatch is confirmed, the
protection follows the broker's position where it is nearer flat, and is cancelled where it is flat; a broker
position larger than ours leaves it as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import AlertLevel, Bracket, Order, OrderStatus, OrderType, TradingState
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import SimGateway

from .helpers import (
    below_bid,
    buy,
    eventually,
    fall_through,
    make_config,
    outside_client,
    partly_filled_bracket,
    protected_long,
    protection_said,
    running,
    sell,
    status,
    working_at_broker,
)

S = OrderStatus


async def _sold_in_tws(sim: SimGateway, qty: float = 5, side: str = "SELL") -> None:
    """``qty`` AAPL sold (or bought: ``side``) at the broker by another client (TWS, id 99)."""
    async with outside_client(sim) as (outsider, contract):
        trade = outsider.placeOrder(contract, ib_async.MarketOrder(side, qty))
        await eventually(lambda: trade.orderStatus.status == "Filled", what="traded at the broker")


async def _mismatch_confirmed(engine: Engine, broker_holds: float) -> None:
    """The broker's position streamed as ``broker_holds``; two periodic position checks in a row (their own cadence
    is 2 s) confirm the mismatch: the executions fetched explain nothing, trading is halted."""
    await eventually(lambda: engine.broker_quantities().get("AAPL", 0) == broker_holds, what="the broker's position")
    engine.check_positions_debounced()
    engine.check_positions_debounced()
    await eventually(lambda: _halted_by_the_mismatch(engine), what="halted by the position mismatch")


async def _bracket_then_sold_while_stopped(sim: SimGateway, config: EngineConfig, qty: float) -> tuple[Order, Order]:
    """A filled bracket of 10 AAPL (its stop and target returned), the engine stopped, then ``qty`` sold in TWS."""
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="quotes")
        _, stop, target = await protected_long(first)
    await _sold_in_tws(sim, qty)
    return stop, target


@asynccontextmanager
async def _running_protected(sim: SimGateway, tmp_path: Path
                             ) -> AsyncIterator[tuple[Engine, Subscription, Order, Order]]:
    """The engine running with the default limits, a filled bracket of 10 AAPL (its stop and target working), the
    events so far drained: (engine, events, stop, target)."""
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        _, stop, target = await protected_long(engine)
        events.drain()
        yield engine, events, stop, target


def _halted_by_the_mismatch(engine: Engine) -> bool:
    kill = engine.risk.kill_state
    return engine.trading_state is TradingState.HALTED and kill.trigger is KillTrigger.POSITION_MISMATCH


async def test_bracket_when_half_sold_in_tws_while_stopped_then_halted_by_the_mismatch_and_stop_and_target_cut(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a filled bracket of 10, the engine stopped, 5 sold in TWS meanwhile. The default limits.
    config = make_config(tmp_path, book_settle_s=0.2)
    stop, target = await _bracket_then_sold_while_stopped(sim, config, 5)

    # Act: started again on the same journal.
    async with running(sim, config) as (engine, events):
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 5, what="the position taken from the broker")
        await eventually(lambda: _halted_by_the_mismatch(engine), what="halted by the position mismatch")

        # Assert: cut to the 5 at the broker, said once at INFO, nothing CRITICAL.
        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 5, target.order_ref: 5},
                         what="stop and target cut to 5 at the broker")
        assert {status(engine, stop.order_ref), status(engine, target.order_ref)} == {S.SUBMITTED}
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cut to the position of 5"))]
        assert engine.trading_state is TradingState.HALTED

        # Then: the price falls through the stop: flat at the broker, not short.
        await fall_through(sim, engine, engine.orders.orders[stop.order_ref])
        assert sim.positions().get("AAPL", 0) == 0 == engine.portfolio.quantity("AAPL")



async def test_automatic_trip_when_its_kept_stop_is_modified_then_only_a_cut_passes_and_under_ctrl_k_not_even_one(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: LONG 10 with its stop and target working, then the position-mismatch trip (it keeps them).
    async with _running_protected(sim, tmp_path) as (engine, _, stop, target):
        engine.engage_kill("position mismatch with the broker: AAPL: ours 10, broker 5", "risk:position_mismatch",
                           KillTrigger.POSITION_MISMATCH)
        assert _halted_by_the_mismatch(engine)
        stop_price = stop.ticket.stop_price or 0.0

        # Act / Assert: a price moved, a new order, are denied by the trading state; a cut passes.
        moved = await engine.modify(stop.order_ref, stop_price=round(stop_price - 1, 2))
        assert [c.name for c in moved.failures] == ["trading_state"]
        assert [c.name for c in engine.preview(sell(5)).failures] == ["trading_state"]
        cut = await engine.modify(stop.order_ref, quantity=5)
        assert cut.passed, cut.reason
        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 5, target.order_ref: 10},
                         what="the stop cut to 5 at the broker")
        await eventually(lambda: not engine.snapshot().modifications, what="the cut confirmed")
        grown = await engine.modify(stop.order_ref, quantity=8)
        assert [c.name for c in grown.failures] == ["trading_state"]

        # The operator's kill on top cancels the protection: a cut of it does not pass either.
        engine.kill("operator: stop everything")
        assert status(engine, target.order_ref) is S.SUBMITTED  # its cancel not answered yet
        denied = engine.verdict(replace(target.ticket, quantity=5), target.order_ref)
        assert [c.name for c in denied.failures] == ["trading_state"]


async def test_bracket_when_all_sold_in_tws_while_stopped_then_its_stop_and_target_are_cancelled(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a filled bracket of 10, the engine stopped, all 10 sold in TWS meanwhile. The default limits.
    config = make_config(tmp_path, book_settle_s=0.2)
    stop, target = await _bracket_then_sold_while_stopped(sim, config, 10)

    # Act: started again on the same journal.
    async with running(sim, config) as (engine, events):
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 0 and _halted_by_the_mismatch(engine),
                         what="flat taken from the broker, halted by the mismatch")

        # Assert: a stop and target under a flat position could only open one: both cancelled at the broker, said.
        await eventually(lambda: not working_at_broker(sim), what="stop and target cancelled at the broker")
        await eventually(lambda: {status(engine, stop.order_ref), status(engine, target.order_ref)} == {S.CANCELLED},
                         what="both shown cancelled")
        assert protection_said(events) == [(AlertLevel.WARNING, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cancelled: AAPL is flat at the "
            "broker, so they could only open a position"))]

        # Then: the price falls below the old stop: nothing happens, the account stays flat.
        sim.control.set_price("AAPL", round((stop.ticket.stop_price or 0.0) - 0.5, 2))
        await eventually(lambda: engine.market.quotes["AAPL"].last < (stop.ticket.stop_price or 0.0),
                         what="the fall seen")
        assert sim.positions().get("AAPL", 0) == 0


async def test_bracket_when_half_sold_in_tws_while_running_then_once_confirmed_stop_and_target_cut_to_the_brokers_5(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a filled bracket of 10 while the engine runs. The default limits.
    async with _running_protected(sim, tmp_path) as (engine, events, stop, target):

        # Act: 5 sold in TWS; the periodic position check confirms the mismatch.
        await _sold_in_tws(sim)
        await _mismatch_confirmed(engine, 5)

        # Assert: cut to the 5 at the broker, said once at INFO, nothing CRITICAL; the book stays ours, halted.
        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 5, target.order_ref: 5},
                         what="stop and target cut to 5 at the broker")
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cut to the position of 5"))]
        assert engine.portfolio.quantity("AAPL") == 10
        assert engine.trading_state is TradingState.HALTED

        # Then: the price falls through the stop: flat at the broker, not short.
        await fall_through(sim, engine, engine.orders.orders[stop.order_ref])
        assert sim.positions().get("AAPL", 0) == 0


async def test_bracket_when_all_sold_in_tws_while_running_then_once_confirmed_stop_and_target_cancelled(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a filled bracket of 10 while the engine runs.
    async with _running_protected(sim, tmp_path) as (engine, events, stop, target):

        # Act: all 10 sold in TWS; the mismatch confirmed.
        await _sold_in_tws(sim, 10)
        await _mismatch_confirmed(engine, 0)

        # Assert: under nothing at the broker they could only open a position: both cancelled, said once.
        await eventually(lambda: not working_at_broker(sim), what="stop and target cancelled at the broker")
        assert protection_said(events) == [(AlertLevel.WARNING, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cancelled: AAPL is flat at the "
            "broker, so they could only open a position"))]
        assert engine.portfolio.quantity("AAPL") == 10
        assert engine.trading_state is TradingState.HALTED


async def test_bracket_when_more_bought_in_tws_while_running_then_mismatch_halts_and_protection_is_left_whole(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a filled bracket of 10 while the engine runs.
    async with _running_protected(sim, tmp_path) as (engine, events, stop, target):

        # Act: 5 more bought in TWS (the broker holds 15); the mismatch confirmed.
        await _sold_in_tws(sim, 5, side="BUY")
        await _mismatch_confirmed(engine, 15)

        # Assert: protection of 10 under 15 is not over-sized: nothing touched, nothing said.
        await engine.broker.current_time()  # a round trip: a cut or cancel would have reached the broker
        assert working_at_broker(sim) == {stop.order_ref: 10, target.order_ref: 10}
        assert protection_said(events) == []


async def test_bracket_when_sold_past_flat_in_tws_while_running_then_once_confirmed_stop_and_target_cancelled(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a filled bracket of 10 while the engine runs.
    async with _running_protected(sim, tmp_path) as (engine, events, stop, target):

        # Act: 15 sold in TWS (the broker SHORT 5); the mismatch confirmed.
        await _sold_in_tws(sim, 15)
        await _mismatch_confirmed(engine, -5)

        # Assert: two sells under a short could only add to it: both cancelled, said once.
        await eventually(lambda: not working_at_broker(sim), what="stop and target cancelled at the broker")
        assert protection_said(events) == [(AlertLevel.WARNING, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cancelled: AAPL is SHORT 5 at the "
            "broker, so they could only add to it"))]
        assert engine.portfolio.quantity("AAPL") == 10


async def test_bracket_entry_when_cancelled_after_part_was_sold_in_tws_then_its_stop_is_placed_again_for_the_brokers(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: 30 of a bracket entry of 100 filled; 10 of them sold in TWS while the engine runs, the mismatch
    # confirmed (the entry still works, so nothing is fitted yet).
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        entry, stop_price = await partly_filled_bracket(sim, engine)
        await _sold_in_tws(sim, 10)
        await _mismatch_confirmed(engine, 20)

        # Act: the operator cancels the entry; the broker cancels its stop and target with it.
        await engine.cancel(entry.order_ref)

        # Assert: the stop placed again sells what the broker holds (20), not the book's 30 (which would leave the
        # account SHORT 10 if it triggered).
        await eventually(lambda: [(o.action, o.total_qty, o.aux_price) for o in sim.orders() if o.working]
                         == [("SELL", 20, stop_price)], what="a stop for the broker's 20")
        assert engine.portfolio.quantity("AAPL") == 30


async def test_bracket_when_more_sold_in_tws_after_a_mismatch_was_followed_then_confirmed_again_and_cut_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: 5 of a bracket's LONG 10 sold in TWS while running; confirmed, stop and target cut to 5.
    async with _running_protected(sim, tmp_path) as (engine, events, stop, target):
        await _sold_in_tws(sim)
        await _mismatch_confirmed(engine, 5)
        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 5, target.order_ref: 5},
                         what="stop and target cut to 5 at the broker")
        events.drain()

        # Act: 3 more sold in TWS (the broker holds 2): a different mismatch, read twice.
        await _sold_in_tws(sim, 3)
        await _mismatch_confirmed(engine, 2)

        # Assert: confirmed again and said again with its figures (the kill switch engaged by the first mismatch
        # already: the trigger's own alert says it); stop and target cut to the broker's 2.
        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 2, target.order_ref: 2},
                         what="stop and target cut to 2 at the broker")
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        assert [(a.level, a.text) for a in said if a.kind == "position_mismatch"] == [(AlertLevel.CRITICAL, (
            "position mismatch with the broker: AAPL: ours 10, broker 2 (the kill switch was engaged already, by "
            "risk:position_mismatch)"))]
        assert [(a.level, a.text) for a in said if a.kind == "protection_fitted"] == [(AlertLevel.INFO, (
            f"{stop.order_ref} (STP 5 AAPL) and {target.order_ref} (LMT 5 AAPL) cut to the position of 2"))]


@pytest.mark.parametrize("bracketed", [False, True])
async def test_bracket_when_half_sold_in_tws_while_an_entry_worked_then_cut_to_the_brokers_5_once_the_entry_ends(
        sim: SimGateway, tmp_path: Path, bracketed: bool) -> None:
    # Arrange: a filled bracket of 10 and a resting limit buy of 5 in the same symbol (a bracket of its own, whose
    # stop the broker cancels with it, or not).
    async with _running_protected(sim, tmp_path) as (engine, events, stop, target):
        limit = below_bid(engine, 5)
        resting = await engine.submit(buy(5, order_type=OrderType.LMT, limit_price=limit,
                                          bracket=Bracket(stop_price=round(limit - 3, 2)) if bracketed else None))
        await eventually(lambda: status(engine, resting.order_ref) is S.SUBMITTED, what="the entry resting")
        events.drain()

        # Act: 5 sold in TWS; the mismatch confirmed. Nothing is fitted while the entry works (its fills would grow
        # the position); the trip cancels it (it could add exposure), and the entry ends unfilled.
        await _sold_in_tws(sim)
        await _mismatch_confirmed(engine, 5)

        # Assert: once the entry ended, the protection follows the broker's 5, said once.
        await eventually(lambda: status(engine, resting.order_ref) is S.CANCELLED, what="the entry cancelled")
        await eventually(lambda: working_at_broker(sim) == {stop.order_ref: 5, target.order_ref: 5},
                         what="stop and target cut to 5 at the broker")
        assert protection_said(events) == [(AlertLevel.INFO, (
            f"{stop.order_ref} (STP 10 AAPL) and {target.order_ref} (LMT 10 AAPL) cut to the position of 5"))]
