"""Closing one symbol verifies only that symbol's cancels; the adapter's real-time bar buffers stay bounded."""

from __future__ import annotations

from tui_trader.domain import Bracket, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import eventually

S = OrderStatus


async def bracket_buy(sim: SimGateway, engine: Engine, symbol: str) -> None:
    """A filled market entry with its protective stop working at the broker."""
    stop = round(sim.quote(symbol).bid * 0.9, 2)
    order = await engine.submit(OrderTicket(symbol, Side.BUY, 10, OrderType.MKT, bracket=Bracket(stop_price=stop)))
    await eventually(lambda: engine.orders.orders[order.order_ref].status is S.FILLED, what="entry filled")
    await eventually(lambda: any(o.symbol == symbol and o.ticket.reduce_only and o.status is S.SUBMITTED
                                 for o in engine.orders.orders.values()), what="protective stop working")


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
