"""Exits that replace a position's protection (a strategy's, the maximum holding time's, the operator's
flatten) and protection fitted to a position that shrank or reversed. None may leave the position with
nothing at the broker, nor with orders that together close more than it holds."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from tui_trader.config.sections import StrategySettings
from tui_trader.domain import AlertLevel, Bracket, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import (
    alerts_said,
    answer_the_stops_cancel,
    below_bid,
    bracket_buy,
    eventually,
    make_config,
    partly_filled_bracket,
    running,
    status,
    waiting_for_the_stops_cancel,
)

S = OrderStatus


def _working_at_broker(sim: SimGateway) -> list[str]:
    return [o.order_ref for o in sim.orders() if o.working]


def _sells(sim: SimGateway) -> list[str]:
    return [r.order_ref for r in sim.received_orders() if r.action == Side.SELL.value]


@pytest.mark.allow_ib_async_faults
async def test_flatten_when_the_stops_cancel_goes_unconfirmed_then_not_sent_and_the_position_does_not_flip(
        sim: SimGateway, tmp_path: Path) -> None:
    # The stop filled at the broker as the flatten began; its fill and the cancel's answer were late.
    # The flatten went on regardless (the kill switch's and the schedule's too): its market sell
    # went out behind the filled stop, and the position flipped short.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.2)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=5)
        sim.control.drop_messages("error", -1)  # the cancel race's 10148
        for kind in ("execution", "order_status", "commission", "position", "portfolio", "account_value"):
            sim.control.delay_messages(kind, 30)  # simulated seconds: never, unless the clock is stepped
        sim.control.set_price("AAPL", round(stop.ticket.stop_price - 1, 2))
        assert sim.positions().get("AAPL", 0) == 0
        sells_before = _sells(sim)

        await eng.flatten(preview=False)

        assert [o for o in eng.orders.orders.values() if o.ticket.strategy == "flatten"] == []  # none created
        assert _sells(sim) == sells_before
        critical = [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                    and e.alert.level is AlertLevel.CRITICAL and e.alert.kind == "exit_not_sent"]
        assert critical == ["flatten of AAPL not sent: AAPL's protective orders are not confirmed cancelled (the "
                            "broker has not answered); reconciliation will settle them, and the position may be "
                            "left without them"]


@pytest.mark.parametrize("how", ["strategy exit", "flatten"])
async def test_exit_when_the_gate_denies_it_then_its_stop_was_never_cancelled(
        sim: SimGateway, tmp_path: Path, how: str) -> None:
    # The stop was cancelled first and the exit checked after: denied (here market orders no longer allowed;
    # neither a spread too wide nor an order size limit lowered under the position denies an exit), it left the
    # position with nothing at the broker, and nothing said so.
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        eng.risk.set_limits(replace(eng.risk.limits, allowed_order_types=(OrderType.LMT, OrderType.STP)))

        if how == "flatten":
            await eng.flatten(preview=False)
        else:
            await eng.close_position("AAPL", "exit signal", "ema_cross")

        assert status(eng, stop.order_ref) is S.SUBMITTED
        assert _working_at_broker(sim) == [stop.order_ref]
        assert sim.positions()["AAPL"] == 10
        (denied,) = [o for o in eng.orders.orders.values() if o.ticket.reduce_only and o.parent_ref is None]
        assert denied.status is S.REJECTED
        assert "order_type_allowed" in denied.history[-1].note


async def test_exit_when_one_already_works_then_a_second_close_leaves_it_alone(
        sim: SimGateway, tmp_path: Path) -> None:
    # A market exit resting (nobody bids) was cancelled as "protection" by the next close (the maximum
    # holding time asks on every tick) and its replacement denied as a duplicate: the position was left
    # with neither its stop nor an exit.
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await bracket_buy(sim, eng)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)
        await eng.close_position("AAPL", "maximum holding time reached", "max_holding")
        (exit_order,) = eng.exits_pending("AAPL")
        resting = {S.SUBMITTED, S.PARTIALLY_FILLED}  # the simulator fills one share without a bid size
        await eventually(lambda: status(eng, exit_order.order_ref) in resting, what="the exit resting")

        await eng.close_position("AAPL", "maximum holding time reached", "max_holding")

        assert _working_at_broker(sim) == [exit_order.order_ref]
        assert status(eng, exit_order.order_ref) in resting
        sim.control.set_quote("AAPL", quote.bid, quote.ask)
        await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="the one exit filled")
        assert _sells(sim).count(exit_order.order_ref) == 1


@pytest.mark.parametrize("rests", [False, True], ids=["first-exit-fills", "first-exit-rests"])
async def test_exit_when_a_second_is_asked_as_the_first_waits_for_its_stops_cancel_then_one_closing_order_nothing_said(
        sim: SimGateway, tmp_path: Path, rests: bool) -> None:
    # The maximum holding time's exit asked while a strategy's waited for its stop's cancel: no exit of the symbol
    # existed yet, so it cancelled and waited too. It waited on the first exit's order as on protection and, that one
    # resting (no bid), gave up after five acknowledgement timeouts: a CRITICAL alert "exit ... not sent: AAPL's exit
    # X has not ended", and a reconciliation, for an exit the first already made.
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.2)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        events.drain()
        waiting = await waiting_for_the_stops_cancel(
            sim, lambda: eng.close_position("AAPL", "exit signal", "ema_cross"),
            lambda: eng.close_position("AAPL", "maximum holding time reached", "max_holding"))  # left to the first
        answer_the_stops_cancel(sim)
        quote = sim.quote("AAPL")
        if rests:
            sim.control.set_quote("AAPL", quote.bid, quote.ask, bid_size=0)  # one share fills, the rest rests
        await asyncio.gather(*waiting)

        (exit_order,) = [o for o in eng.orders.orders.values() if o.ticket.order_type is OrderType.MKT
                         and o.ticket.side is Side.SELL]
        assert exit_order.ticket.strategy == "ema_cross"
        assert alerts_said(events) == []
        sim.control.set_quote("AAPL", quote.bid, quote.ask)
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0 and not eng.orders.working(), what="closed")
        assert "AAPL" not in sim.positions()
        assert _sells(sim) == [stop.order_ref, exit_order.order_ref]


async def test_exit_when_one_waits_for_approval_then_a_second_close_asks_nothing_more(
        sim: SimGateway, tmp_path: Path) -> None:
    # Every monitor tick queued another approval (and a what-if) for the same stale position.
    async with running(sim, make_config(tmp_path, approvals_required=True, approval_timeout_s=60)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = round(sim.quote("AAPL").bid * 0.9, 2)
        entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT, bracket=Bracket(stop_price=stop)))
        eng.approve(entry.order_ref)
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 10, what="entry filled")
        await eng.close_position("AAPL", "maximum holding time reached", "max_holding")
        await eng.close_position("AAPL", "maximum holding time reached", "max_holding")
        assert [p.order.ticket.reduce_only for p in eng.approvals.items()] == [True]


async def test_position_when_held_past_the_maximum_holding_time_then_closed_at_the_broker(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path, max_holding_s=0.2)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng)
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="closed for its age")
        assert sim.positions().get("AAPL", 0) == 0
        assert status(eng, stop.order_ref) is S.CANCELLED
        assert not _working_at_broker(sim)


async def test_position_when_partly_sold_from_a_ticket_then_its_stop_is_cut_to_it_and_never_reverses_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The stop kept the entry's 100 after a plain sell of 60: when it triggered it sold 100 of the 40
    # held, and the position went 60 short.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        manual = await eng.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))
        await eventually(lambda: status(eng, manual.order_ref) is S.FILLED, what="the partial sell")
        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [40],
                         what="the stop cut to the position at the broker")
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "protection_fitted"] == [
            f"{stop.order_ref} (STP 100 AAPL) cut to the position of 40"]

        sim.control.set_price("AAPL", round(stop.ticket.stop_price - 0.5, 2))
        await eventually(lambda: status(eng, stop.order_ref) is S.FILLED, what="the stop triggered")
        assert sim.positions().get("AAPL", 0) == 0
        assert eng.portfolio.quantity("AAPL") == 0


async def test_position_when_partly_sold_from_a_ticket_then_stop_and_target_both_cut_to_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # With a target beside the stop, each cut was denied "reduce-only order would not reduce a position"
    # (the other child, still at 100, counted beside it): CRITICAL, and a stop of 100 on 40 held.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        quote = sim.quote("AAPL")
        sim.control.set_quote("AAPL", quote.bid, quote.ask, 500, 500)
        entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 100, OrderType.MKT, bracket=Bracket(
            stop_price=round(quote.bid * 0.9, 2), take_profit_price=round(quote.ask * 1.1, 2))))
        await eventually(lambda: status(eng, entry.order_ref) is S.FILLED, what="entry filled")
        stop, target = eng.orders.children(entry.order_ref)
        await eventually(lambda: {status(eng, stop.order_ref), status(eng, target.order_ref)} == {S.SUBMITTED})

        manual = await eng.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))
        await eventually(lambda: status(eng, manual.order_ref) is S.FILLED, what="the partial sell")
        await eventually(lambda: sorted(o.total_qty for o in sim.orders()
                                        if o.order_ref in (stop.order_ref, target.order_ref)) == [40, 40],
                         what="stop and target cut to the position at the broker")
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "protection_fitted"]
        assert [(a.level, a.text) for a in alerts] == [(AlertLevel.INFO, (
            f"{stop.order_ref} (STP 100 AAPL) and {target.order_ref} (LMT 100 AAPL) cut to the position of 40"))]


async def test_position_when_reversed_from_a_ticket_then_its_old_stop_is_cancelled_not_left_to_add_to_it(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=10)
        reverse = await eng.submit(OrderTicket("AAPL", Side.SELL, 25, OrderType.MKT))
        await eventually(lambda: status(eng, reverse.order_ref) is S.FILLED, what="the reversing sell")
        await eventually(lambda: status(eng, stop.order_ref) is S.CANCELLED, what="the old stop cancelled")
        assert sim.positions()["AAPL"] == -15
        assert not [o for o in sim.orders() if o.working]
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "protection_fitted"] == [
            f"{stop.order_ref} cancelled: a SELL would add to the AAPL position of -15"]


async def _second_bracket_working(eng: Engine, limit: float) -> tuple[Order, Order]:
    """A second bracket entry, a buy limit of 5 AAPL at ``limit`` with its stop 10 % below, working unfilled beside
    the position: (its entry, its stop)."""
    second = await eng.submit(OrderTicket("AAPL", Side.BUY, 5, OrderType.LMT, limit_price=limit,
                                          bracket=Bracket(stop_price=round(limit * 0.9, 2))))
    (second_stop,) = eng.orders.children(second.order_ref)
    await eventually(lambda: status(eng, second_stop.order_ref) is S.SUBMITTED, what="the second bracket working")
    return second, second_stop


async def test_position_when_sold_flat_then_the_stop_of_a_bracket_entry_still_working_stays_for_its_fill(
        sim: SimGateway, tmp_path: Path) -> None:
    # A fill that took the position flat cancelled every protective order in the symbol, the stop of a
    # second bracket whose entry still worked too: that entry filled later, LONG 5 with no stop at the broker.
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        first_stop = await bracket_buy(sim, eng, qty=10)
        limit = below_bid(eng, 1.0)
        second, second_stop = await _second_bracket_working(eng, limit)

        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 10, OrderType.MKT))
        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="sold flat")
        await eventually(lambda: status(eng, first_stop.order_ref) is S.CANCELLED, what="the first stop cancelled")
        sim.control.set_price("AAPL", round(limit - 0.5, 2))
        await eventually(lambda: status(eng, second.order_ref) is S.FILLED, what="the second entry filled")

        assert sim.positions()["AAPL"] == 5
        assert _working_at_broker(sim) == [second_stop.order_ref]
        assert status(eng, second_stop.order_ref) is S.SUBMITTED


async def test_position_when_partly_sold_beside_a_working_bracket_entry_then_its_stop_is_cut_and_never_reverses_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # While a second bracket's entry worked, no protection in the symbol was fitted: the stop of 10 stayed under
    # the LONG 6 left after a sell of 4, and its trigger sold the account SHORT 4.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=10)
        limit = round(sim.quote("AAPL").bid * 0.8, 2)  # far below the first stop: it stays unfilled
        second, second_stop = await _second_bracket_working(eng, limit)

        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 4, OrderType.MKT))
        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the partial sell")
        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [6],
                         what="the first stop cut to the position at the broker")
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "protection_fitted"] == [f"{stop.order_ref} (STP 10 AAPL) cut to the position of 6"]
        assert [o.total_qty for o in sim.orders() if o.order_ref == second_stop.order_ref] == [5]  # left whole

        sim.control.set_price("AAPL", round(stop.ticket.stop_price - 0.5, 2))
        await eventually(lambda: status(eng, stop.order_ref) is S.FILLED, what="the first stop triggered")
        assert sim.positions().get("AAPL", 0) == 0
        assert sorted(_working_at_broker(sim)) == sorted([second.order_ref, second_stop.order_ref])


async def test_position_when_partly_sold_beside_a_partly_filled_bracket_entry_then_the_older_stop_covers_it_all(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker holds the second bracket's stop inactive until its entry has filled in full: it protects none of
    # the 30 filled so far. So the first stop is fitted to all 70 held, and the gate measures the cut without it.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        second, _ = await partly_filled_bracket(sim, eng)
        (second_stop,) = eng.orders.children(second.order_ref)
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 130, what="long 130")

        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 60, OrderType.MKT))
        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the partial sell")
        await eventually(lambda: [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [70],
                         what="the first stop cut to the position")

        assert [o.total_qty for o in sim.orders() if o.order_ref == second_stop.order_ref] == [100]
        assert status(eng, second.order_ref) is S.PARTIALLY_FILLED
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "protection_fitted"] == [
            f"{stop.order_ref} (STP 100 AAPL) cut to the position of 70"]


async def test_bracket_entry_when_cancelled_after_a_partial_fill_then_its_stop_is_placed_again_for_the_part_held(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker cancels a bracket's stop and target with its entry: 30 of 100 filled, the rest cancelled,
    # and the 30 were left with nothing at the broker, nothing said.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        entry, stop_price = await partly_filled_bracket(sim, eng)

        await eng.cancel(entry.order_ref)

        await eventually(lambda: [(o.action, o.total_qty, o.aux_price) for o in sim.orders() if o.working]
                         == [("SELL", 30, stop_price)], what="a stop for the 30 at the broker")
        assert sim.positions()["AAPL"] == 30
        (placed,) = eng.protection_working("AAPL")
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "protection_replaced"] == [
            f"{entry.order_ref} was cancelled with 30 of 100 filled; the broker cancelled its stop with it: "
            f"placed again for 30 AAPL as {placed.order_ref}"]
        assert eng.portfolio.positions["AAPL"].stop_price == stop_price


async def test_position_when_held_past_its_strategys_own_maximum_holding_time_then_closed_and_said(
        sim: SimGateway, tmp_path: Path) -> None:
    # `[[strategies]] max_holding_s` was accepted and never used: only `[risk] max_holding_s` closed positions.
    slow = StrategySettings(name="ema_cross", symbols=["AAPL"], bar_size_s=5, max_holding_s=0.2,
                            params={"fast": 50, "slow": 200})  # never signals in this test's few seconds
    async with running(sim, make_config(tmp_path, strategies=(slow,))) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        entry = await eng.submit(OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT, strategy="ema_cross"))
        await eventually(lambda: status(eng, entry.order_ref) is S.FILLED, what="the strategy's entry filled")
        assert eng.portfolio.positions["AAPL"].owner == "ema_cross"

        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="closed for its age")

        assert sim.positions().get("AAPL", 0) == 0
        said = [a.text for a in alerts_said(events, kind="holding_time_strategy")]
        assert len(said) == 1
        assert "AAPL LONG 10 held" in said[0]
        assert "past ema_cross's max_holding_s 0.2s: closing it" in said[0]
