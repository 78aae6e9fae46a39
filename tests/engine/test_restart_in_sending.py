"""An order the journal has in SENDING after a restart: the engine died between the durable
SENDING record and the broker's answer.

Reconciliation looks it up by orderRef: found, it is adopted (its real state, fills once); not
found within the ack timeout since it was journaled, it is left to the ack watcher; after the
timeout with no trace at the broker, it goes to UNKNOWN (alert, entries blocked) and the
reconciliation that follows settles it. It is never resubmitted. The race is forced, not waited
for: either a real SIGKILL of a child engine whose acknowledgement the simulator holds back, or
the SENDING record written into a real journal file before the engine starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui_trader.domain import OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised, OrderUpdated
from tui_trader.domain.orders import Order
from tui_trader.sim import SimGateway
from tui_trader.store.journal import Journal

from .helpers import buy, eventually, make_config, make_engine, status

S = OrderStatus
ROOT = Path(__file__).resolve().parents[2]
HELD = 3600.0  # simulated seconds: the acknowledgement never reaches the killed engine


async def _kill_child_after_send(sim: SimGateway, journal_dir: Path, limit: float) -> str:
    """A child engine sends a resting buy with its acknowledgement held, and is SIGKILLed: its ref."""
    sim.control.delay_messages("open_order", HELD)
    sim.control.delay_messages("order_status", HELD)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.crash_child_sending", str(sim.port), str(journal_dir), str(limit),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    ref, sent_as = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
    await eventually(lambda: ref in sim.order_refs(), what="order received by the simulator")
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    sim.control.delay_messages("open_order", 0)
    sim.control.delay_messages("order_status", 0)
    assert sent_as == S.SENDING.value
    return ref


async def _journal_sending(journal_dir: Path, sent_at: datetime) -> Order:
    """Write an order in SENDING into a real journal file, as a run that died before placing it left it."""
    journal = await Journal.open(journal_dir / "journal.sqlite")
    ticket = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=1.0, created_at=sent_at)
    order = Order("ttdead-1", ticket, S.APPROVED, sent_at, sent_at)
    order = order.with_status(S.APPROVED, sent_at, "approval not required").with_status(S.SENDING, sent_at, "sending")
    journal.append(OrderUpdated(sent_at, order, S.APPROVED))
    await journal.close()
    return order


async def test_restart_when_order_in_sending_reached_the_broker_then_adopted_in_its_real_state_and_filled_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: the engine is killed with its order on the wire and unanswered; it fills while down.
    limit = round(sim.quote("AAPL").bid - 1.0, 2)
    ref = await _kill_child_after_send(sim, tmp_path, limit)
    sim.control.set_price("AAPL", limit - 0.5)
    # Act
    engine = make_engine(sim, make_config(tmp_path))
    await engine.start()
    try:
        # Assert: found by orderRef, adopted as the broker has it, the fill booked once, nothing resent.
        assert engine.journal is not None
        await eventually(lambda: status(engine, ref) is S.FILLED, what="adopted and filled")
        assert engine.portfolio.quantity("AAPL") == sim.positions()["AAPL"] == 10
        await engine.journal.flush()
        assert sum(f.quantity for f in await engine.journal.fills() if f.order_ref == ref) == 10
        assert sim.order_refs().count(ref) == 1
        assert not engine.blocks
    finally:
        await engine.stop()


async def test_restart_when_order_in_sending_within_its_ack_timeout_and_unknown_to_broker_then_in_flight_then_unknown_then_settled(  # noqa: E501
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: journaled as SENDING a second ago; the broker never saw it; a 4 s ack timeout.
    order = await _journal_sending(tmp_path, datetime.now(UTC) - timedelta(seconds=1))
    engine = make_engine(sim, make_config(tmp_path, ack_timeout_s=4.0))
    events = engine.subscribe("test", lossless=True)
    # Act
    await engine.start()
    try:
        # Assert: the startup reconciliation leaves it in flight (neither cancelled nor blocking).
        assert status(engine, order.order_ref) is S.SENDING
        assert engine.awaiting_ack(engine.orders.orders[order.order_ref])
        # Then the ack timeout runs out: UNKNOWN with an alert, entries blocked, and the reconciliation
        # it asks for finds no trace of the orderRef at the broker: it never reached it.
        await eventually(lambda: status(engine, order.order_ref) is S.CANCELLED, timeout=15, what="settled")
        seen = events.drain()
        steps = [e.order.status for e in seen if isinstance(e, OrderUpdated) and e.order.order_ref == order.order_ref]
        assert steps == [S.UNKNOWN, S.CANCELLED]
        kinds = [e.alert.kind for e in seen if isinstance(e, AlertRaised)]
        assert "order_unknown" in kinds
        assert "entries_blocked" in kinds
        await eventually(lambda: not engine.blocks, what="entries unblocked once settled")
        assert order.order_ref not in sim.order_refs()  # never resubmitted
    finally:
        await engine.stop()


async def test_restart_when_order_in_sending_past_its_ack_timeout_and_unknown_to_broker_then_settled_with_alert(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: journaled as SENDING an hour ago; the broker has no trace of it.
    order = await _journal_sending(tmp_path, datetime.now(UTC) - timedelta(hours=1))
    engine = make_engine(sim, make_config(tmp_path))
    events = engine.subscribe("test", lossless=True)
    # Act
    await engine.start()
    try:
        # Assert: settled by the startup reconciliation, with an alert naming the change; not resent.
        assert status(engine, order.order_ref) is S.CANCELLED
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "order_reconciled"]
        assert any(order.order_ref in a.text and "SENDING" in a.text for a in alerts)
        assert not engine.blocks
        assert (await engine.submit(buy(1, symbol="MSFT"))).status is not S.REJECTED
        assert order.order_ref not in sim.order_refs()
    finally:
        await engine.stop()
