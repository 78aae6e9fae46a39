"""A lost link is one alert that says both what happened and that entries are blocked; their lift is said to match.

It was two ERRORs and two notices: "broker: disconnected from the broker; reconnecting" and "engine: new entries
blocked: disconnected: waiting to reconnect and reconcile". The start sets the same block silently, yet "entry block
lifted: reconciling" (INFO) was said at every connect, also with no "blocked" before it.
"""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import AlertLevel, ConnectionState
from tui_trader.domain.alerts import Alert
from tui_trader.domain.events import AlertRaised, Event
from tui_trader.engine.engine import Engine
from tui_trader.ops.notify import notice_for
from tui_trader.sim import SimGateway

from .helpers import CLIENT_ID, eventually, make_config, running

BLOCK_KINDS = ("entries_blocked", "entries_unblocked")
BLOCKED = "new entries blocked until reconciled"
LOST = f"disconnected from the broker; reconnecting ({BLOCKED})"


def alerts_of(events: list[Event]) -> list[Alert]:
    """The alerts among ``events``."""
    return [e.alert for e in events if isinstance(e, AlertRaised)]


async def lose_the_link(engine: Engine, sim: SimGateway) -> None:
    """Drop ``engine``'s session and wait until the link is down, then up again and reconciled."""
    sim.control.drop_sessions(CLIENT_ID)
    await eventually(lambda: engine.connection.state is ConnectionState.DISCONNECTED, what="the link lost")
    assert "reconciling" in engine.blocks  # blocked, if not said on its own
    await eventually(lambda: engine.reconnects == 1 and engine.connection.state is ConnectionState.CONNECTED,
                     what="reconnected")


async def test_start_when_connected_then_no_entry_block_or_lift_is_said(sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        assert engine.connection.state is ConnectionState.CONNECTED
        assert not engine.blocks
        said = alerts_of(events.drain())
    assert [a.text for a in said if a.kind in (*BLOCK_KINDS, "reconnected")] == []


async def test_lost_link_when_reconnected_then_one_error_says_entries_blocked_and_one_info_their_lift(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        events.drain()
        await lose_the_link(engine, sim)
        seen = events.drain()
    said = alerts_of(seen)
    assert [(a.level, a.source, a.text) for a in said if a.level is not AlertLevel.INFO] == [
        (AlertLevel.ERROR, "broker", LOST)]
    assert [(a.source, a.kind, a.text) for a in said if a.level is AlertLevel.INFO] == [
        ("broker", "reconnected", "reconnected and reconciled: new entries no longer blocked by the lost link")]
    # The link made is sent only where a failed connect was told and not ended (the reconnected alert ends it first).
    notices = [n for n in map(notice_for, seen) if n is not None and not n.owed_only]
    assert [(n.level, n.kind, n.title, n.text) for n in notices if n.level is not AlertLevel.INFO] == [
        (AlertLevel.ERROR, "disconnects", "broker disconnected", "connection lost; " + BLOCKED)]
    assert [(n.kind, n.title) for n in notices if n.level is AlertLevel.INFO] == [
        ("disconnects", "broker: reconnected and reconciled: new entries no longer blocked by the lost link")]


async def test_lost_link_when_reconnected_with_another_block_held_then_its_lift_says_what_still_blocks(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        engine.block("stale_data", "market data stalled")
        events.drain()
        await lose_the_link(engine, sim)
        said = alerts_of(events.drain())
    assert [a.text for a in said if a.kind == "reconnected"] == [
        "reconnected and reconciled: new entries no longer blocked by the lost link (still blocked: market data "
        "stalled)"]
