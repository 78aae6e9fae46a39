"""A start whose connect is made (the handshake done, the account id read) but whose sync fails never connected.

"Connected at some time this run" was read from the account id, which the handshake gives before the sync: a start
whose sync the gateway dropped counted as connected. Its first failure was alerted as a WARNING (the words for a
reconnect), the disconnect trigger said "broker disconnected", and a headless run that never had a working link
exited 0 with no "never connected" in its outcome line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import pytest

from tui_trader.config import Settings
from tui_trader.domain import AlertLevel, ConnectionState, Mode, TradingState
from tui_trader.domain.events import AlertRaised, TradingStateChanged
from tui_trader.engine.engine import Engine
from tui_trader.engine.runner import NEVER_CONNECTED, headless_run
from tui_trader.risk.limits import TriggerAction
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.sim.protocol.ids import Out

from .helpers import eventually, limits_for_tests, make_config, make_engine

SYNC_DROPPED = "connected, but the sync failed: subscribing market data: the gateway closed the connection"
"""The reason of a connect whose subscribe the gateway dropped (``connect_failure_said``)."""


def subscribing(sim: SimGateway) -> bool:
    """The engine has asked ``sim`` for contract details: its handshake is done, its subscribe under way."""
    details = str(int(Out.REQ_CONTRACT_DATA))
    return any(fields[:1] == [details] for _, fields in sim.received_frames)


async def drop_the_sync(sim: SimGateway) -> None:
    """Drop the sessions of ``sim`` once a client is subscribing (its contract details held back: it waits for
    them), and clear the frames received (the next contract details request is the retry's)."""
    await eventually(lambda: subscribing(sim), what="the connect subscribing")
    sim.received_frames.clear()
    sim.control.drop_sessions()


async def started_with_the_sync_dropped(sim: SimGateway, engine: Engine) -> None:
    """Start ``engine`` on ``sim``, whose contract details never end: the connect is made, its sync is dropped."""
    sim.control.delay_messages("contract_details_end", 3600)
    starting = asyncio.ensure_future(engine.start())
    await drop_the_sync(sim)
    await starting


async def test_start_when_the_sync_after_the_handshake_is_dropped_then_the_first_failure_is_an_error(
        sim: SimGateway, tmp_path: Path) -> None:
    engine = make_engine(sim, make_config(tmp_path))
    events = engine.subscribe("test", lossless=True)
    try:
        await started_with_the_sync_dropped(sim, engine)
        failed = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.kind == "connect_failed"]
        assert engine.account_id.startswith("DU")  # read at the handshake: the premise
    finally:
        await engine.stop()
    assert engine.connection.state is not ConnectionState.CONNECTED
    assert [(a.level, a.source) for a in failed] == [(AlertLevel.ERROR, "broker")]
    assert f"but the sync failed: {SYNC_DROPPED.split(': ', 1)[1]}; trying again in" in failed[0].text


async def test_disconnect_trigger_when_the_start_synced_never_then_it_says_no_connection_to_the_broker(
        sim: SimGateway, tmp_path: Path) -> None:
    limits = limits_for_tests(disconnect_halt_after_s=0.2, disconnect_action=TriggerAction.REDUCING)
    engine = make_engine(sim, make_config(tmp_path, limits=limits))
    events = engine.subscribe("test", lossless=True)
    try:
        await started_with_the_sync_dropped(sim, engine)
        await eventually(lambda: engine.trading_state is TradingState.REDUCING, what="reducing by the trigger")
    finally:
        await engine.stop()
    (change,) = [e for e in events.drain() if isinstance(e, TradingStateChanged)]
    assert (change.by, change.state) == ("risk:disconnect", TradingState.REDUCING)
    assert re.fullmatch(r"no connection to the broker for \d+s \(limit 0\.2s\)", change.reason), change.reason


async def _headless_with_the_sync_dropped(tmp_path: Path, out: Path) -> int:
    """A headless paper run on a simulator that drops its first sync and holds the retry's; SIGINT ends it once
    the retry is under way (the failure said by then)."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        sim.control.delay_messages("contract_details_end", 3600)
        settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                            broker={"port": sim.port, "connect_timeout": 3.0, "reconnect_initial_s": 0.05})
        running = asyncio.ensure_future(headless_run(settings, 60.0, out))
        await drop_the_sync(sim)
        await eventually(lambda: subscribing(sim), what="the retry subscribing")
        os.kill(os.getpid(), signal.SIGINT)
        return await running


def test_headless_run_when_every_sync_after_the_handshake_fails_then_it_never_connected_and_exits_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"

    code = asyncio.run(_headless_with_the_sync_dropped(tmp_path, out))

    assert code == NEVER_CONNECTED
    summary = json.loads(out.read_text())
    assert summary["account"].startswith("DU")  # read at the handshake: the premise
    assert summary["never_connected"] == SYNC_DROPPED
    said = capsys.readouterr()
    assert re.search(r"no working link to 127\.0\.0\.1:\d+: " + re.escape(SYNC_DROPPED) + "$", said.out.rstrip())
    assert re.search(r"ERROR    broker: connected to 127\.0\.0\.1:\d+ but the sync failed", said.err)
