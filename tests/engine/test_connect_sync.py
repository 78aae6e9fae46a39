"""A connect that was made (the handshake done) but whose sync failed: said as that, once, and not as a lost link.

It said "could not connect to H:P: ['open orders request timed out']" (it had connected), and a reconnect whose
sync the gateway dropped said it twice over: "disconnected from the broker; reconnecting" and "could not connect",
with a third notification for the DISCONNECTED between them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, ConnectionState
from tui_trader.domain.events import AlertRaised, ConnectionChanged, Event
from tui_trader.engine.engine import Engine
from tui_trader.ops.notify import notice_for
from tui_trader.sim import SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import CLIENT_ID, eventually, make_config, make_engine

S = ConnectionState


def broker_alerts(events: list[Event]) -> list[tuple[AlertLevel, str, str]]:
    """The broker's alerts among ``events``: (level, kind, text)."""
    return [(e.alert.level, e.alert.kind, e.alert.text) for e in events
            if isinstance(e, AlertRaised) and e.alert.source == "broker"]


def link_changes(events: list[Event]) -> list[tuple[ConnectionState, ConnectionState]]:
    """The connection changes among ``events``: (previous, state)."""
    return [(e.previous, e.state) for e in events if isinstance(e, ConnectionChanged)]


def disconnect_notices(events: list[Event]) -> list[str]:
    """The notifications about the link that ``events`` call for, one line each (but the link made, sent only where
    a connect that failed was told and not ended: a reconnection's ``reconnected`` alert ends it first)."""
    notices = [notice_for(e) for e in events]
    return [n.line for n in notices if n is not None and n.kind == "disconnects" and not n.owed_only]


@pytest.mark.allow_ib_async_faults  # ib_async logs the open orders request that timed out: the fault provoked
async def test_start_when_the_sync_after_the_handshake_stalls_then_said_connected_but_the_sync_failed_once(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sim.control.delay_messages("open_orders_end", 3600)  # the gateway answers the handshake, never the open orders
    engine = make_engine(sim, make_config(tmp_path), timeout=0.3)
    events = engine.subscribe("test", lossless=True)
    caplog.set_level(logging.INFO, logger="tui_trader.engine")
    wording = re.compile(rf"connected to {sim.host}:{sim.port} but the sync failed: open orders request timed out; "
                         r"trying again in \d+\.\d s")

    def said_in_the_log() -> list[str]:
        return [r.getMessage() for r in caplog.records if "sync failed" in r.getMessage()]

    try:
        await engine.start()
        await eventually(lambda: len(said_in_the_log()) >= 2, what="the start's attempt and a retry")
    finally:
        await engine.stop()
    seen = events.drain()
    alerts = broker_alerts(seen)
    assert [(level, kind) for level, kind, _ in alerts] == [(AlertLevel.ERROR, "connect_failed")]  # once
    assert wording.fullmatch(alerts[0][2])
    assert all(wording.search(text) for text in said_in_the_log())
    assert wording.fullmatch(engine.connection.last_error)  # the connectivity pane's last error
    assert engine.connection.last_error_reason == "connected, but the sync failed: open orders request timed out"
    assert link_changes(seen)[:2] == [(S.DISCONNECTED, S.CONNECTING), (S.CONNECTING, S.DISCONNECTED)]
    assert all(state is not S.CONNECTED for _, state in link_changes(seen))
    assert [line.split("] ", 1)[1] for line in disconnect_notices(seen)] == [f"broker: {alerts[0][2]}"]


async def test_reconnect_when_the_gateway_drops_it_during_the_sync_then_one_alert_one_notice_and_no_link_made(
        engine: Engine, sim: SimGateway) -> None:
    events = engine.subscribe("test", lossless=True)
    sim.control.delay_messages("contract_details_end", 3600)  # the reconnect's subscribe waits for its details
    sim.received_frames.clear()
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.connection.state is S.DISCONNECTED, what="the link lost")
    down_since = engine.disconnected_since
    details = str(int(Out.REQ_CONTRACT_DATA))
    await eventually(lambda: any(fields[:1] == [details] for _, fields in sim.received_frames),
                     what="the reconnect subscribing")
    assert engine.connection.state is S.CONNECTING  # handshake done, not synced: not up yet
    assert engine.disconnected_since == down_since  # the disconnect trigger keeps counting through the sync

    sim.control.clear_faults()
    sim.control.drop_sessions(CLIENT_ID)

    await eventually(lambda: engine.connection.state is S.CONNECTED and not engine.blocks, what="connected again")
    seen = events.drain()
    where = f"{sim.host}:{sim.port}"
    alerts = broker_alerts(seen)
    assert [(level, kind) for level, kind, _ in alerts] == [
        (AlertLevel.ERROR, "disconnect"), (AlertLevel.WARNING, "connect_failed"), (AlertLevel.INFO, "reconnected")]
    assert alerts[0][2] == "disconnected from the broker; reconnecting (new entries blocked until reconciled)"
    assert re.fullmatch(rf"connected to {where} but the sync failed: subscribing market data: the gateway closed "
                        r"the connection; trying again in \d+\.\d s", alerts[1][2])
    assert link_changes(seen) == [(S.CONNECTED, S.DISCONNECTED), (S.DISCONNECTED, S.CONNECTING),
                                  (S.CONNECTING, S.CONNECTED)]
    notices = disconnect_notices(seen)
    assert [line.split("] ", 1)[1] for line in notices] == [
        "broker disconnected: connection lost; new entries blocked until reconciled", f"broker: {alerts[1][2]}",
        f"broker: {alerts[2][2]}"]  # the last at INFO: sent where INFO is
    assert engine.reconnects == 1  # the attempt whose sync failed made no reconnection
