"""Position closes verify their cancels at the broker: concurrently with each other and with a
reconciliation (ib_async's shared open-orders request key), and their alerts name the close."""

from __future__ import annotations

import asyncio

from tui_trader.domain import OrderStatus
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import SHORT_ACKS, bracket_buy, eventually

S = OrderStatus


async def test_close_positions_when_concurrent_with_a_reconcile_then_every_verification_reaches_the_broker(
        engine: Engine, sim: SimGateway) -> None:
    await bracket_buy(sim, engine, "AAPL")
    await bracket_buy(sim, engine, "MSFT")
    events = engine.subscribe("test", lossless=True)

    await asyncio.gather(engine.close_position("AAPL", "exit signal", "manual"),
                         engine.close_position("MSFT", "max holding time", "manual"),
                         engine.reconcile("cancel race"))

    alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
    assert [a.text for a in alerts if "could not verify" in a.text] == []
    assert [a.text for a in alerts if a.kind in ("cancel_unverified", "order_unknown")] == []
    await eventually(lambda: not engine.portfolio.open_positions(), what="both positions closed")


@SHORT_ACKS
async def test_close_position_when_cancel_unanswered_then_alert_names_the_close_not_the_kill_switch(
        engine: Engine, sim: SimGateway) -> None:
    await bracket_buy(sim, engine, "AAPL")
    sim.control.drop_messages("order_status", -1)  # the stop's cancel is never confirmed
    sim.control.drop_messages("error", -1)
    events = engine.subscribe("test", lossless=True)

    await engine.close_position("AAPL", "exit signal", "manual")

    alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
    unverified = [a for a in alerts if a.kind in ("cancel_unverified", "exit_not_sent")]
    assert [(a.source, a.kind) for a in unverified] == [("close_position", "exit_not_sent")]  # said once, by the close
    assert engine.risk.kill_state.engaged is False
