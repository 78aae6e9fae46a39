"""A modification unanswered when the connection drops: still shown pending, at the figures the broker last
confirmed, until the reconnect's reconciliation says which figures the broker holds.

Connecting again forgot every modification unanswered (what the last session did not answer, it never will):
the snapshot then had no pending view, and the panes showed the order's ticket, the figures asked, as the
broker's, through the outage and until the reconciliation took the broker's (if it differed).
"""

from __future__ import annotations

import pytest

from tui_trader.domain import OrderStatus, OrderType
from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import CLIENT_ID, REFUSAL, bracket_buy, buy, eventually, held_at_broker, shown, status

S = OrderStatus


def asked_open_orders(sim: SimGateway) -> bool:
    """The engine has asked the gateway for its open orders (since ``sim.received_frames`` was cleared)."""
    return any(cid == CLIENT_ID and f[:1] == [str(int(Out.REQ_OPEN_ORDERS))] for cid, f in sim.received_frames)


def stop_shown(engine: Engine) -> tuple[float | None, float]:
    """The AAPL position's stop in the snapshot, and how much of the position its stops cover there."""
    account = engine.snapshot().account
    return account.positions["AAPL"].stop_price, account.stop_covered("AAPL")


async def reconnecting(sim: SimGateway) -> None:
    """The connection drops (the broker's answers lost with it: every fault cleared) and the engine, connecting
    again, waits for the open orders it asks for (until :func:`reconciled`)."""
    sim.control.clear_faults()
    sim.control.delay_messages("open_orders_end", 1.0)
    sim.received_frames.clear()
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: asked_open_orders(sim), what="the reconnect asking for its open orders")


async def reconciled(engine: Engine, sim: SimGateway) -> None:
    """The open orders answered: wait for the reconnect's reconciliation."""
    sim.control.delay_messages("open_orders_end", 0)
    sim.control.step(1.0)
    await eventually(lambda: engine.reconnects >= 1 and "reconciling" not in engine.blocks,
                     what="reconnected and reconciled")


def figures(ticket: OrderTicket) -> tuple[float, float | None, float | None]:
    """(quantity, limit, stop) of a ticket."""
    return ticket.quantity, ticket.limit_price, ticket.stop_price


@pytest.mark.parametrize("broker", ["took-it", "refused-it"])
async def test_modify_unanswered_when_the_connection_drops_then_pending_at_the_figures_held_until_reconciled(
        engine: Engine, sim: SimGateway, broker: str) -> None:
    limit = round(sim.quote("AAPL").bid - 3.0, 2)
    order = await engine.submit(buy(10, order_type=OrderType.LMT, limit_price=limit))
    ref, new_limit = order.order_ref, round(limit + 0.5, 2)
    await eventually(lambda: status(engine, ref) is S.SUBMITTED)
    for kind in ("open_order", "order_status", "error"):  # the broker's answer is lost with the connection
        sim.control.drop_messages(kind, -1)
    if broker == "refused-it":
        sim.control.refuse_next_modify(201, REFUSAL)

    await engine.modify(ref, quantity=20, limit_price=new_limit)
    await eventually(lambda: [r.qty for r in sim.received_orders() if r.modification] == [20], what="sent")
    await reconnecting(sim)

    pending = engine.snapshot().modifications[ref]
    assert (figures(pending.held), figures(pending.asked)) == ((10, limit, None), (20, new_limit, None))
    await reconciled(engine, sim)
    assert not engine.snapshot().modifications
    held = (20, new_limit, None) if broker == "took-it" else (10, limit, None)
    assert shown(engine, ref) == held_at_broker(sim, ref) == held


async def test_stop_moved_unanswered_when_the_connection_drops_then_the_positions_show_the_stop_held_until_reconciled(
        engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, qty=10)
    old = stop.ticket.stop_price or 0.0
    sim.control.drop_messages("error", -1)  # the refusal is lost with the connection
    sim.control.refuse_next_modify(201, REFUSAL)

    await engine.modify(stop.order_ref, stop_price=round(old + 1.0, 2))
    await eventually(lambda: [r.order_ref for r in sim.received_orders() if r.modification] == [stop.order_ref],
                     what="sent")
    await reconnecting(sim)

    assert stop_shown(engine) == (old, 10)
    await reconciled(engine, sim)
    assert not engine.snapshot().modifications
    assert stop_shown(engine) == (old, 10)
    assert shown(engine, stop.order_ref) == held_at_broker(sim, stop.order_ref) == (10, None, old)
