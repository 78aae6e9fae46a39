"""A strategy's exit (or opposite) signal closes only a position the strategy owns: one it opened from flat
with its own entry and that nothing else has added to. Any other (a ticket's, one added to, one adopted from
the broker) is left to its stop and the operator, said once per position; the owner survives a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import Order, OrderStatus, OrderType, Side
from tui_trader.domain.events import AlertRaised, BookCheckpointed
from tui_trader.engine.bus import Subscription
from tui_trader.engine.config import EngineConfig
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway
from tui_trader.strategies.base import Signal

from .helpers import (
    alerts_said,
    bracket_buy,
    buy,
    eventually,
    make_config,
    outside_client,
    running,
    sell,
    status,
    strategy,
)

S = OrderStatus
NAME = "Counting"
"""The strategy of these tests (a plugin that never signals by itself: the tests give it its signals)."""
EXIT = Signal(Side.SELL, "exit: the cross ended", exit=True)
OPPOSITE = Signal(Side.SELL, "cross down")
SIGNALS = pytest.mark.parametrize("signal", [EXIT, OPPOSITE], ids=["exit signal", "opposite signal"])


def _config(tmp_path: Path) -> EngineConfig:
    return make_config(tmp_path, strategies=(strategy("engine.plugin_strategies:Counting", ("AAPL", "MSFT")),))


def _closing() -> list[str]:
    """The close tasks a strategy's signal started (none when the position was left alone)."""
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("exit-")]


def _not_owned(events: Subscription) -> list[str]:
    return [a.text for a in alerts_said(events, kind="position_not_owned")]


def _left_alone(symbol: str, whose: str) -> str:
    return (f"{NAME}'s signal to close {symbol} left the position alone: it is not {NAME}'s ({whose}); its stop "
            "and the operator see to it")


async def _strategy_long(engine: Engine) -> Order:
    """The strategy's own 10 AAPL (its bracket entry filled, the stop working); returns the stop."""
    engine.on_signal(engine.strategies[NAME], "AAPL", Signal(Side.BUY, "cross up"))
    (entry,) = [o for o in engine.orders.orders.values() if o.ticket.strategy == NAME and o.parent_ref is None]
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="the strategy's entry filled")
    stop = next(o for o in engine.orders.children(entry.order_ref) if o.ticket.stop_price)
    await eventually(lambda: status(engine, stop.order_ref) is S.SUBMITTED, what="its stop working")
    return stop


async def test_signals_to_close_when_the_position_was_opened_from_a_ticket_then_left_to_its_stop_said_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # The operator bought 100 AAPL from a ticket; the strategy's exit signal sold all 100, cancelling the
    # operator's stop first: an order nobody meant reached the market.
    async with running(sim, _config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        events.drain()

        for signal in (EXIT, OPPOSITE, EXIT, OPPOSITE):  # one each bar
            eng.on_signal(eng.strategies[NAME], "AAPL", signal)

        assert _closing() == []
        assert _not_owned(events) == [_left_alone("AAPL", "opened from a ticket")]
        assert eng.portfolio.positions["AAPL"].owner == "manual"
        assert [o for o in eng.orders.orders.values() if o.ticket.strategy == NAME] == []
        assert status(eng, stop.order_ref) is S.SUBMITTED
        assert [o.order_ref for o in sim.orders() if o.working] == [stop.order_ref]
        assert sim.positions()["AAPL"] == 100


@SIGNALS
async def test_signal_to_close_when_the_strategy_opened_the_position_then_closed_as_before(
        sim: SimGateway, tmp_path: Path, signal: Signal) -> None:
    async with running(sim, _config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await _strategy_long(eng)
        assert eng.portfolio.positions["AAPL"].owner == NAME

        eng.on_signal(eng.strategies[NAME], "AAPL", signal)

        await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="closed at the broker")
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="closed in the book")
        assert status(eng, stop.order_ref) is S.CANCELLED
        assert _not_owned(events) == []


@SIGNALS
async def test_signal_to_close_when_a_ticket_added_to_the_strategys_position_then_left_alone(
        sim: SimGateway, tmp_path: Path, signal: Signal) -> None:
    # The strategy's 10 and the operator's 5 on top: its exit sold all 15.
    async with running(sim, _config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await _strategy_long(eng)
        added = await eng.submit(buy(5))
        await eventually(lambda: status(eng, added.order_ref) is S.FILLED, what="the ticket's buy filled")
        events.drain()

        eng.on_signal(eng.strategies[NAME], "AAPL", signal)

        assert _closing() == []
        assert _not_owned(events) == [
            _left_alone("AAPL", "added to by another order, or its opener not known")]
        assert status(eng, stop.order_ref) is S.SUBMITTED
        assert sim.positions()["AAPL"] == 15


async def test_exit_signal_when_a_ticket_only_reduced_the_strategys_position_then_it_still_closes_the_rest(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, _config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await _strategy_long(eng)
        sold = await eng.submit(sell(4))
        await eventually(lambda: status(eng, sold.order_ref) is S.FILLED, what="the ticket's sell filled")
        assert eng.portfolio.positions["AAPL"].owner == NAME

        eng.on_signal(eng.strategies[NAME], "AAPL", EXIT)

        await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="the 6 left closed at the broker")
        assert _not_owned(events) == []


@pytest.mark.parametrize("how", ["clean stop", "died"])
async def test_restart_when_the_strategy_held_its_position_then_it_still_closes_it_and_not_one_adopted(
        sim: SimGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    # The owner lived in memory only: after a restart the strategy either closed everything in its symbols
    # (the broker's positions included) or could not tell its own. "died": no checkpoint at the stop, so the
    # owner comes from the journaled fills of the strategy's orders, replayed after the last checkpoint.
    async with outside_client(sim) as (outsider, _):
        (msft,) = await outsider.qualifyContractsAsync(ib_async.Stock("MSFT", "SMART", "USD"))
        outsider.placeOrder(msft, ib_async.MarketOrder("BUY", 7))
        await eventually(lambda: sim.positions().get("MSFT") == 7, what="MSFT bought outside tui-trader")
    async with running(sim, _config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await _strategy_long(eng)
        if how == "died":
            monkeypatch.setattr(eng, "checkpoint_book", lambda reason: None)
        events.drain()
    monkeypatch.undo()
    kept = [e.state.get("owners") for e in events.drain() if isinstance(e, BookCheckpointed)]
    assert kept == ([{"AAPL": NAME}] if how == "clean stop" else [])

    async with running(sim, _config(tmp_path)) as (again, events):
        await eventually(lambda: again.book_settled and {"AAPL", "MSFT"} <= set(again.market.quotes))
        assert again.portfolio.positions["AAPL"].owner == NAME
        assert again.portfolio.positions["MSFT"].owner == ""
        events.drain()

        again.on_signal(again.strategies[NAME], "MSFT", EXIT)
        assert _closing() == []
        assert _not_owned(events) == [
            _left_alone("MSFT", "added to by another order, or its opener not known")]
        again.on_signal(again.strategies[NAME], "AAPL", EXIT)

        await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="the strategy's AAPL closed")
        assert status(again, stop.order_ref) is S.CANCELLED
        assert sim.positions()["MSFT"] == 7


async def test_exit_signal_when_a_ticket_adds_while_the_stop_is_being_cancelled_then_not_sent_and_said(
        sim: SimGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The exit read the position again after its stop's cancel was confirmed: the operator's 5 bought
    # meanwhile were sold with the strategy's 10.
    async with running(sim, _config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await _strategy_long(eng)
        clear = eng.clear_protection

        async def clear_as_a_ticket_buys(symbol: str, what: str, order_ref: str | None = None) -> str:
            why = await clear(symbol, what, order_ref)
            added = await eng.submit(buy(5))
            await eventually(lambda: status(eng, added.order_ref) is S.FILLED, what="the ticket's buy filled")
            return why

        monkeypatch.setattr(eng, "clear_protection", clear_as_a_ticket_buys)
        events.drain()

        eng.on_signal(eng.strategies[NAME], "AAPL", EXIT)
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == "exit-AAPL"))

        assert [o for o in eng.orders.orders.values() if o.ticket.strategy == NAME and o.ticket.reduce_only
                and o.parent_ref is None and o.ticket.order_type is OrderType.MKT] == []
        assert sim.positions()["AAPL"] == 15
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        assert [a.text for a in said if a.kind == "exit_not_sent"] == [
            f"{NAME}'s exit of AAPL not sent: the position stopped being its own (added to by another order, or "
            "its opener not known) while its protective orders were cancelled for the exit"]
        # Not left without them: placed again for the position as it is now, and said so.
        (again,) = [a.text for a in said if a.kind == "exit_unprotected"]
        assert again.startswith(f"{NAME}'s exit of AAPL not sent (the position stopped being its own): AAPL LONG 15 "
                                "has no stop at the broker")
        await eventually(lambda: sorted(o.total_qty for o in sim.orders() if o.working) == [15, 15],
                         what="its stop and target placed again for 15")


async def test_strategy_when_loaded_under_the_name_tickets_carry_then_renamed_and_a_tickets_position_not_its(
        sim: SimGateway, tmp_path: Path) -> None:
    # A plugin named "manual" would have owned every position the operator opened from a ticket.
    config = make_config(tmp_path, strategies=(strategy("engine.plugin_strategies:manual"),))
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        assert list(eng.strategies) == ["manual#2"]
        await bracket_buy(sim, eng)

        eng.on_signal(eng.strategies["manual#2"], "AAPL", EXIT)

        assert _closing() == []
        assert sim.positions()["AAPL"] == 10
