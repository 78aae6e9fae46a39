"""Closing one symbol verifies only that symbol's cancels; the adapter's real-time bar buffers stay bounded."""

from __future__ import annotations

from tui_trader.domain import OrderStatus
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import bracket_buy, eventually

S = OrderStatus


async def test_close_position_when_other_symbol_has_stop_then_no_cancel_unverified_alert(
        engine: Engine, sim: SimGateway) -> None:
    await bracket_buy(sim, engine, "AAPL")
    await bracket_buy(sim, engine, "MSFT")
    events = engine.subscribe("test")

    await engine.close_position("AAPL", "test exit", "manual")

    kinds = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
    assert "cancel_unverified" not in kinds
    assert any(o.symbol == "MSFT" and o.ticket.reduce_only and o.status is S.SUBMITTED
               for o in engine.orders.orders.values())


async def test_realtime_bars_stream_then_adapter_keeps_only_the_latest_bar(engine: Engine, sim: SimGateway) -> None:
    bars = engine.broker._bars  # type: ignore[attr-defined]  # noqa: SLF001 - the buffer under test
    for _ in range(30):
        sim.control.step(10.0)
    await eventually(lambda: all(len(b) == 1 for b in bars.values()) and len(bars) == 2, what="bars trimmed")
    await engine.broker.ib.reqCurrentTimeAsync()  # type: ignore[attr-defined]
    assert {len(b) for b in bars.values()} == {1}
