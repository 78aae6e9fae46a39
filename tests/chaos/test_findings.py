"""Engine faults the soak and chaos runs surfaced, each pinned by a focused test against the simulator.

Each was ``xfail(strict=True)`` until the engine was fixed; both are fixed now and these tests keep
them fixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fuzz.helpers import make_engine  # the same engine the fuzz tests drive

from tui_trader.domain import Bracket, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain import events as ev
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .harness import eventually


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[SimGateway, Engine]]:
    """A simulator and a started engine with quotes for AAPL and MSFT."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, tmp_path)
        await engine.start()
        gw.control.step(1.0)
        await eventually(lambda: {"AAPL", "MSFT"} <= set(engine.market.quotes), what="first quotes")
        yield gw, engine
        await engine.stop()


async def bracket_buy(gw: SimGateway, engine: Engine, symbol: str) -> None:
    """A filled market entry with its protective stop working at the broker."""
    stop = round(gw.quote(symbol).bid * 0.9, 2)
    order = await engine.submit(OrderTicket(symbol, Side.BUY, 10, OrderType.MKT, bracket=Bracket(stop_price=stop)))
    await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED, what="entry filled")
    await eventually(lambda: any(o.symbol == symbol and o.ticket.reduce_only and o.status is OrderStatus.SUBMITTED
                                 for o in engine.orders.orders.values()), what="protective stop working")


async def test_close_position_when_other_symbols_have_stops_then_no_false_critical_alert(
        world: tuple[SimGateway, Engine]) -> None:
    gw, engine = world
    await bracket_buy(gw, engine, "AAPL")
    await bracket_buy(gw, engine, "MSFT")
    events = engine.subscribe("findings")

    await engine.close_position("AAPL", "test exit", "manual")

    alerts = [e.alert for e in events.drain() if isinstance(e, ev.AlertRaised)]
    false_alarms = [a.text for a in alerts if a.kind == "cancel_unverified"]
    assert false_alarms == []


async def test_realtime_bars_when_a_session_streams_then_the_adapter_keeps_a_bounded_number(
        world: tuple[SimGateway, Engine]) -> None:
    gw, engine = world
    for _ in range(60):  # 10 minutes of market time: 120 five-second bars per symbol
        gw.control.step(10.0)
        await asyncio.sleep(0.005)
    await eventually(lambda: engine.market.age_s(engine.now()) < 3600, what="bars flowing")

    kept = {symbol: len(bars) for symbol, bars in engine.broker._bars.items()}  # type: ignore[attr-defined]  # noqa: SLF001

    assert kept, "bars are subscribed"
    assert max(kept.values()) <= 10, kept
