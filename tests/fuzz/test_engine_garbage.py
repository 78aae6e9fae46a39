"""The engine survives garbage from the gateway: it drops the connection, halts new entries, reconnects.

The simulator plays a gateway gone wrong (``control.send_malformed``): a corrupted byte stream (then
the connection closes), or well-framed messages with garbage inside (fields that are not numbers, a
message id that does not exist, random bytes). After each, the engine must have blocked new entries,
reconnected and reconciled, and trade normally again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui_trader.domain import OrderStatus
from tui_trader.domain import events as ev
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, make_engine

pytestmark = pytest.mark.allow_ib_async_faults


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


async def trades_again(gw: SimGateway, engine: Engine) -> None:
    """Connected, entries open, and a market order fills."""
    await eventually(lambda: engine.is_connected and not engine.entries_blocked_reason, timeout=10,
                     what="reconnected with entries open")
    order = await engine.submit(buy(1))
    await eventually(lambda: engine.orders.orders[order.order_ref].status is OrderStatus.FILLED, timeout=10,
                     what="order filled")
    assert gw.duplicate_order_refs() == []


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_corrupted_stream_when_gateway_sends_it_then_engine_blocks_entries_reconnects_and_trades(
        world: tuple[SimGateway, Engine], seed: int) -> None:
    gw, engine = world
    events = engine.subscribe("fuzz")
    before = engine.reconnects

    gw.control.send_malformed("stream", seed=seed)

    await eventually(lambda: engine.reconnects > before, timeout=10, what="a reconnect")
    seen = events.drain()
    states = [e.state.value for e in seen if isinstance(e, ev.ConnectionChanged)]
    assert "DISCONNECTED" in states or "RECONNECTING" in states, states
    assert any(isinstance(e, ev.AlertRaised) and "entries blocked" in e.alert.text for e in seen)
    await trades_again(gw, engine)


@pytest.mark.parametrize("kind", ["fields", "unknown", "binary"])
async def test_malformed_message_when_gateway_sends_it_then_engine_drops_connection_and_reconnects(
        world: tuple[SimGateway, Engine], kind: str) -> None:
    gw, engine = world
    before = engine.reconnects

    gw.control.send_malformed(kind, seed=9)

    await eventually(lambda: engine.reconnects > before, what="the engine to drop and reconnect")
    await trades_again(gw, engine)


@pytest.mark.parametrize(("kind", "what"), [
    ("binary", "a malformed message from the gateway (no fields, not decodable)"),
    ("fields", "a malformed message from the gateway (6 fields, not decodable)"),
    ("unknown", "a malformed message from the gateway (3 fields, not decodable)")])
async def test_malformed_message_when_gateway_sends_it_then_one_alert_says_what_it_was_without_its_bytes(
        world: tuple[SimGateway, Engine], kind: str, what: str) -> None:
    gw, engine = world
    events = engine.subscribe("fuzz", lossless=True)
    before = engine.reconnects

    gw.control.send_malformed(kind, seed=9)

    await eventually(lambda: engine.reconnects > before, what="the engine to drop and reconnect")
    said = [e.alert for e in events.drain() if isinstance(e, ev.AlertRaised) and e.alert.source == "broker"]
    assert [(a.level.value, a.text) for a in said if "malformed" in a.text or "disconnected" in a.text] == [
        ("ERROR", f"{what}; reconnecting (new entries blocked until reconciled)")]
