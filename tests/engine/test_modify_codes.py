"""IB's 104 and 135 answering a modification: the broker refused it, and the adapter and the engine agree on it.

104 ("can't modify a filled order") answers a modify that reached IB after the order filled; 135 ("can't find order
with ID") one of an order (or a bracket child's parent) IB does not know. The adapter took both for a cancel's race
(ib_async's trade left Cancelled), the engine for a refusal. A 104 heard before the fill was said as the order
"works on" at its old figures, and reconciled at once, before the fill came: the fill said again as recovered, the
order as found filled by the reconciliation. A 104 heard after the fill came too late: the order was shown filled at
the figures refused (10 filled of an order of 20). A 135 left ib_async's trade Cancelled while IB worked the order,
so the next modify of it could not be sent.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tui_trader.domain import AlertLevel, OrderStatus, OrderType
from tui_trader.engine.amend import REFUSED_NOTE
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway

from .helpers import alerts_said, buy, eventually, held_at_broker, make_config, running, shown, status

S = OrderStatus
FILLED_FIRST = "Can't modify a filled order"
"""The simulator's text of IB's 104."""
NOT_FOUND = "Can't find order with ID = 99"
FILL_KINDS = ("execution", "order_status", "commission", "position", "portfolio", "account_value")
"""The messages a fill sends."""


def alerts(events: Subscription) -> list[tuple[AlertLevel, str, str]]:
    """(level, kind, text) of the alerts published so far."""
    return [(a.level, a.kind, a.text) for a in alerts_said(events)]


def ib_trade(engine: Engine, order_ref: str) -> Any:
    """ib_async's trade of the order in the adapter."""
    trades = engine.broker.ib.wrapper.trades.values()  # type: ignore[attr-defined]
    (trade,) = [t for t in trades if t.order.orderRef == order_ref]
    return trade


def ib_status(engine: Engine, order_ref: str) -> str:
    """ib_async's status of the order's trade in the adapter."""
    return str(ib_trade(engine, order_ref).orderStatus.status)


async def resting_buy(engine: Engine, sim: SimGateway) -> tuple[str, float]:
    """A buy limit of 10 AAPL $3 under the bid, working at the broker: its ref and limit."""
    await eventually(lambda: "AAPL" in engine.market.quotes)
    limit = round(sim.quote("AAPL").bid - 3.0, 2)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED)
    return order.order_ref, limit


@pytest.mark.parametrize("heard_first", ["fill", "refusal"])
async def test_modify_racing_a_fill_when_the_broker_refuses_it_with_104_then_filled_at_the_figures_held_said_once(
        sim: SimGateway, tmp_path: Path, heard_first: str) -> None:
    # Arrange: a resting buy of 10; what the broker says of its fill and of the modify comes a second of the
    # simulated clock late, the one heard first a second before the other.
    async with running(sim, make_config(tmp_path)) as (engine, events):
        ref, limit = await resting_buy(engine, sim)
        for kind in FILL_KINDS:
            sim.control.delay_messages(kind, 1.0 if heard_first == "fill" else 2.0)
        sim.control.delay_messages("error", 2.0 if heard_first == "fill" else 1.0)
        sim.control.set_quote("AAPL", round(limit - 0.02, 2), limit, 500, 500)
        await eventually(lambda: [o.status for o in sim.orders() if o.order_ref == ref] == ["Filled"], what="filled")
        alerts(events)

        # Act: the engine, not told of the fill yet, modifies the order to 20; the broker refuses it (104).
        assert (await engine.modify(ref, quantity=20)).passed
        await eventually(lambda: [r.qty for r in sim.received_orders() if r.modification] == [20], what="sent")
        sim.control.step(1.0)
        sim.control.step(1.0)

        # Assert: the order filled at the figures the broker held, nothing pending, the refusal said once.
        await eventually(lambda: status(engine, ref) is S.FILLED and shown(engine, ref)[0] == 10,
                         what="filled at 10")
        await eventually(lambda: engine.portfolio.quantity("AAPL") == 10, what="the fill booked")
        assert shown(engine, ref) == held_at_broker(sim, ref) == (10, limit, None)
        assert engine.orders.orders[ref].filled_quantity == 10
        assert not engine.snapshot().modifications
        assert not engine.broker._modifying  # type: ignore[attr-defined]  # the adapter's record answered too
        assert ib_status(engine, ref) == "Filled"
        await engine.reconcile("the test: the engine and the broker agree")
        assert alerts(events) == [
            (AlertLevel.WARNING, "modify_refused", f"{ref} (LMT BUY AAPL): the broker refused its modification to "
                                                   f"20 lmt {limit:g} (104: {FILLED_FIRST}); it filled at 10 lmt "
                                                   f"{limit:g} first")]
        assert engine.journal is not None
        await engine.journal.flush()
        journaled = await engine.journal.order(ref)
        assert journaled is not None
        assert (journaled.status, journaled.ticket.quantity) == (S.FILLED, 10)


async def test_modify_refused_with_135_then_ib_async_s_trade_works_on_reconciled_and_the_next_modify_goes(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        ref, limit = await resting_buy(engine, sim)
        sim.control.refuse_next_modify(135, NOT_FOUND, order_ref=ref)
        alerts(events)

        assert (await engine.modify(ref, quantity=20)).passed

        await eventually(lambda: engine.orders.orders[ref].history[-1].note.startswith(REFUSED_NOTE), what="put back")
        assert shown(engine, ref) == held_at_broker(sim, ref) == (10, limit, None)
        assert status(engine, ref) is S.SUBMITTED
        assert ib_status(engine, ref) == "Submitted"  # not Cancelled: IB works it
        # The adapter put it back at the refusal (not a reconciliation's answer later): the engine's verdict.
        assert "modify refused (135): works on as it was" in [e.message for e in ib_trade(engine, ref).log]
        assert not engine.broker._modifying  # type: ignore[attr-defined]
        assert alerts(events) == [
            (AlertLevel.WARNING, "modify_refused", f"{ref} (LMT BUY AAPL): the broker refused its modification to "
                                                   f"20 lmt {limit:g} (135: {NOT_FOUND}); the broker does not know it "
                                                   f"(or its parent): at 10 lmt {limit:g} until a reconciliation "
                                                   "reads it")]
        assert (await engine.modify(ref, quantity=20)).passed
        await eventually(lambda: held_at_broker(sim, ref) == (20, limit, None), what="the next modify taken")
        await eventually(lambda: not engine.snapshot().modifications, what="confirmed")
        assert status(engine, ref) is S.SUBMITTED


@pytest.mark.parametrize("engine_changes", [{"ack_timeout_s": 0.5}], ids=["ack-0.5s"])
async def test_modify_refused_with_104_when_the_fill_never_comes_then_reconciled_after_the_ack_timeout(
        engine: Engine, sim: SimGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tui_trader.engine.reconcile")
    ref, limit = await resting_buy(engine, sim)
    for kind in ("execution", "order_status", "commission"):
        sim.control.drop_messages(kind, 1)  # the fill's are lost
    sim.control.set_quote("AAPL", round(limit - 0.02, 2), limit, 500, 500)
    await eventually(lambda: [o.status for o in sim.orders() if o.order_ref == ref] == ["Filled"], what="filled")

    await engine.modify(ref, quantity=20)

    await eventually(lambda: engine.orders.orders[ref].history[-1].note.startswith(REFUSED_NOTE), what="refused")
    assert status(engine, ref) is S.SUBMITTED  # nothing heard of the fill yet
    await eventually(lambda: status(engine, ref) is S.FILLED and engine.orders.orders[ref].filled_quantity == 10,
                     what="found filled by a reconciliation, its fill recovered", timeout=5.0)
    assert shown(engine, ref) == (10, limit, None)
    assert f"reconciling: {ref}: filled at the broker (104), no fill heard" in caplog.messages
