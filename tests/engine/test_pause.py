"""A paused strategy opens nothing but still manages what it opened: its entry signals are dropped (not
kept for the resume), its exit (or opposite) signals close the positions it owns, through the risk gate
like any exit. Driven by bars through the strategy runner, as the market data drives it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tui_trader.domain import Bar, Order, OrderStatus, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway
from tui_trader.strategies.base import Signal

from .helpers import eventually, make_config, running, status, strategy
from .plugin_strategies import Scripted

S = OrderStatus
NAME = "Scripted"
ENTRY = Signal(Side.BUY, "cross up")
EXIT = Signal(Side.SELL, "exit: the cross ended", exit=True)
OPPOSITE = Signal(Side.SELL, "cross down")


@pytest.fixture(autouse=True)
def _no_signal() -> Iterator[None]:
    Scripted.signal = None
    yield
    Scripted.signal = None


class _Bars:
    """Consecutive 5-second AAPL bars newer than anything the warm-up fetched, each one a completed bar."""

    def __init__(self) -> None:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        self.at = at - timedelta(seconds=at.second % 5)

    def next(self, engine: Engine, signal: Signal | None) -> None:
        """Feed the engine a bar on which the strategy signals ``signal``."""
        Scripted.signal = signal
        self.at += timedelta(seconds=5)
        engine.on_bar(Bar("AAPL", self.at, 100.0, 100.1, 99.9, 100.0, 100.0, 100.0, 1))


def _entries(engine: Engine) -> list[Order]:
    return [o for o in engine.orders.orders.values() if o.ticket.strategy == NAME and not o.ticket.reduce_only
            and o.parent_ref is None]


async def _strategy_long(engine: Engine, bars: _Bars) -> Order:
    """The strategy's own 10 AAPL, opened by its entry signal on a bar; returns the bracket's stop."""
    bars.next(engine, ENTRY)
    (entry,) = _entries(engine)
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="the strategy's entry filled")
    stop = next(o for o in engine.orders.children(entry.order_ref) if o.ticket.stop_price)
    await eventually(lambda: status(engine, stop.order_ref) is S.SUBMITTED, what="its stop working")
    return stop


@pytest.mark.parametrize("signal", [EXIT, OPPOSITE], ids=["exit signal", "opposite signal"])
async def test_signal_to_close_when_the_strategy_is_paused_and_owns_the_position_then_closes_it(
        sim: SimGateway, tmp_path: Path, signal: Signal) -> None:
    # The pause dropped every signal: the strategy's exit never came, and the position it opened was left
    # to its broker-held stop and the operator.
    config = make_config(tmp_path, strategies=(strategy(f"engine.plugin_strategies:{NAME}"),))
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        bars = _Bars()
        stop = await _strategy_long(eng, bars)
        eng.pause_strategy(NAME, True)

        bars.next(eng, signal)

        await eventually(lambda: sim.positions().get("AAPL", 0) == 0, what="closed at the broker")
        await eventually(lambda: eng.portfolio.quantity("AAPL") == 0, what="closed in the book")
        assert status(eng, stop.order_ref) is S.CANCELLED
        (exit_order,) = [o for o in eng.orders.orders.values() if o.ticket.strategy == NAME
                         and o.ticket.reduce_only and o.parent_ref is None]
        assert (exit_order.ticket.side, exit_order.status) == (Side.SELL, S.FILLED)
        bars.next(eng, ENTRY)  # flat again, still paused: no new entry, the opposite signal did not reverse it
        assert len(_entries(eng)) == 1


async def test_entry_signal_when_the_strategy_is_paused_then_nothing_sent_and_on_resume_it_enters_again(
        sim: SimGateway, tmp_path: Path) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"engine.plugin_strategies:{NAME}"),))
    async with running(sim, config) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        bars = _Bars()
        eng.pause_strategy(NAME, True)

        bars.next(eng, ENTRY)
        bars.next(eng, ENTRY)
        assert eng.orders.orders == {}

        eng.pause_strategy(NAME, False)
        bars.next(eng, None)  # the signals seen while paused are not kept for the resume
        assert eng.orders.orders == {}
        bars.next(eng, ENTRY)

        (entry,) = _entries(eng)
        await eventually(lambda: status(eng, entry.order_ref) is S.FILLED, what="the entry filled")
        assert sim.positions()["AAPL"] == entry.ticket.quantity
        assert [e.alert.text for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.source == "strategies"] == [
            f"strategy {NAME} paused: no new entries; its exits still close its positions",
            f"strategy {NAME} resumed"]
