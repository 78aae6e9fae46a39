"""Kill switch: the cancels leave inside ``kill`` itself, after the HALTED flip and before anything else."""

from __future__ import annotations

from typing import Any

from tui_trader.domain import OrderStatus, OrderType, TradingState
from tui_trader.domain.events import KillSwitchEngaged
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, status

S = OrderStatus


async def test_kill_writes_every_cancel_before_publishing_or_journaling_then_all_end(
        engine: Engine, sim: SimGateway) -> None:
    price = round(engine.market.quotes["AAPL"].bid * 0.97, 2)
    refs = [(await engine.submit(buy(q, order_type=OrderType.LMT, limit_price=price))).order_ref for q in (1, 2, 3)]
    await eventually(lambda: all(status(engine, r) is S.SUBMITTED for r in refs))
    journal = engine.journal
    assert journal is not None
    steps: list[tuple[str, Any]] = []
    cancel, publish, save_kill = engine.broker.cancel, engine.publish, journal.save_kill_state

    def recorded_cancel(broker_id: int) -> None:
        steps.append(("cancel", engine.trading_state))
        cancel(broker_id)

    def recorded_publish(event: Any) -> None:
        steps.append(("publish", type(event).__name__))
        publish(event)

    async def recorded_save(*args: Any, **kwargs: Any) -> None:
        steps.append(("journal", None))
        await save_kill(*args, **kwargs)

    engine.broker.cancel = recorded_cancel  # type: ignore[method-assign]
    engine.publish = recorded_publish  # type: ignore[method-assign]
    journal.save_kill_state = recorded_save  # type: ignore[method-assign]
    try:
        engine.kill("operator pressed ctrl+k")
        in_kill = list(steps)
        await eventually(lambda: all(status(engine, r) is S.CANCELLED for r in refs))
        await eventually(lambda: ("journal", None) in steps, what="kill latch persisted")
    finally:
        del engine.broker.cancel, engine.publish, journal.save_kill_state
    # Inside kill(): HALTED first, then the three cancels, then the events; nothing journaled yet.
    assert in_kill[:3] == [("cancel", TradingState.HALTED)] * 3
    assert ("publish", KillSwitchEngaged.__name__) in in_kill[3:]
    assert ("journal", None) not in in_kill
    assert not [o for o in sim.orders() if o.order_ref in refs and o.working]
