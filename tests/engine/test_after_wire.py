"""What an order sent from a market-data handler publishes comes after the wire, and in order.

The order path places the order, then leaves publishing its events to ``EngineCore.after_wire``:
they go out once the loop has read what waits, or first thing when anything else is published.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.broker.ib import adapter
from tui_trader.config import load_settings
from tui_trader.domain import AlertLevel, Bracket, OrderStatus
from tui_trader.domain.events import AlertRaised, Event, OrderChecked, OrderUpdated
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, status

S = OrderStatus


def _about(events: list[Event], ref: str) -> list[str]:
    """The events about order ``ref`` (its statuses, ``checked``) and the alerts, in bus order."""
    out = []
    for e in events:
        if isinstance(e, OrderUpdated) and e.order.order_ref == ref:
            out.append(e.order.status.value)
        elif isinstance(e, OrderChecked) and e.order_ref == ref:
            out.append("checked")
        elif isinstance(e, AlertRaised) and e.alert.source == "test":
            out.append("alert")
    return out


async def test_order_sent_when_something_is_published_in_the_same_step_then_its_events_come_first(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange
    await eventually(lambda: "AAPL" in engine.market.quotes)
    events = engine.subscribe("test", lossless=True)
    # Act: the order goes on the wire; an alert is raised before the loop turns.
    order = engine.submit_nowait(buy(1))
    engine.alert(AlertLevel.INFO, "test", "published right after the send")
    # Assert: the order's SENDING update and its checks were published before the alert.
    assert engine.orders.orders[order.order_ref].broker_id is not None  # placed
    assert _about(events.drain(), order.order_ref)[:3] == ["SENDING", "checked", "alert"]


async def test_order_sent_then_its_events_follow_once_the_loop_turns_and_before_the_broker_s_answer(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange
    await eventually(lambda: "AAPL" in engine.market.quotes)
    events = engine.subscribe("test", lossless=True)
    seen: list[Event] = []
    # Act
    order = engine.submit_nowait(buy(1))
    ref = order.order_ref

    def filled() -> bool:
        seen.extend(events.drain())
        return S.FILLED.value in _about(seen, ref)

    await eventually(filled, what="the order's fill published")
    # Assert: the steps before the wire first, then the broker's answers.
    about = _about(seen, ref)
    assert about[:2] == [S.SENDING.value, "checked"]
    assert about.index("checked") < about.index(S.SUBMITTED.value)
    assert about[-1] == S.FILLED.value


async def test_order_family_written_then_the_cpu_is_offered_once_after_its_transmitting_order(
        engine: Engine, sim: SimGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: count the trades ib_async holds each time the adapter offers the CPU.
    trades = engine.broker.ib.wrapper.trades  # type: ignore[attr-defined]
    offered: list[int] = []
    real = adapter._let_the_gateway_run

    def offer() -> None:
        offered.append(len(trades))
        real()

    monkeypatch.setattr(adapter, "_let_the_gateway_run", offer)
    before = len(trades)
    ask = engine.market.quotes["AAPL"].ask
    # Act: a single order, then a bracket (entry, stop and target: only the target transmits).
    engine.submit_nowait(buy(1))
    protection = Bracket(stop_price=round(ask * 0.98, 2), take_profit_price=round(ask * 1.02, 2))
    engine.submit_nowait(buy(2, bracket=protection))
    # Assert: once per family, after its last order is written (the bracket's three at once).
    assert offered == [before + 1, before + 4]
    await eventually(lambda: sum(o.working for o in sim.orders()) == 2, what="the bracket's stop and target working")


async def test_order_with_the_simulator_embedded_then_the_cpu_is_not_offered(
        isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: the engine --sim runs (the simulator reads the order in the engine's own loop).
    settings = load_settings(None, {"state_dir": str(isolated / "state"), "confirm": False, "sim": {"port": 0},
                                    "strategies": [{"name": "ema_cross", "symbols": ["AAPL"]}]})
    engine = create_engine(settings)
    offered: list[None] = []
    monkeypatch.setattr(adapter, "_let_the_gateway_run", lambda: offered.append(None))
    await engine.start()
    try:
        await eventually(lambda: "AAPL" in engine.market.quotes, what="a first quote")
        # Act
        order = engine.submit_nowait(buy(1))
        await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="the order filled")
    finally:
        await engine.stop()
    # Assert: sent and filled, and the CPU never offered.
    assert offered == []
