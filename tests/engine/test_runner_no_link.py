"""How a headless run whose link never came up says why: a stop by the operator is not a gateway that did not answer,
and a gateway that answered the connect is not one never connected to."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tui_trader.config import Settings
from tui_trader.domain import Mode
from tui_trader.engine.runner import NEVER_CONNECTED, headless_run, outcome
from tui_trader.engine.snapshots import ConnectionInfo
from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, silent_gateway
from .test_ever_linked import subscribing


async def _stopped_while_connecting(port: int, tmp_path: Path, out: Path, caplog: pytest.LogCaptureFixture) -> int:
    """A headless paper run on ``port`` that gets SIGINT once its first connect has begun."""
    settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                        broker={"port": port, "connect_timeout": 30.0})
    running = asyncio.ensure_future(headless_run(settings, 60.0, out))
    await eventually(lambda: any("connecting to" in r.getMessage() for r in caplog.records),
                     what="the first connect begun")
    os.kill(os.getpid(), signal.SIGINT)
    return await running


def test_headless_run_when_stopped_by_sigint_while_the_first_connect_waits_then_it_says_so_not_no_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # It said "no answer before the run ended (is the gateway running, its API enabled?)" of a run the operator
    # stopped a moment into its connect.
    caplog.set_level(logging.INFO, logger="tui_trader.engine.runner")
    out = tmp_path / "summary.json"
    with silent_gateway() as port:
        code = asyncio.run(_stopped_while_connecting(port, tmp_path, out, caplog))

    why = "stopped by SIGINT before the connect was answered"
    assert code == NEVER_CONNECTED
    assert json.loads(out.read_text())["never_connected"] == why
    said = capsys.readouterr().out.rstrip()
    assert said.endswith(f"never connected to 127.0.0.1:{port}: {why}")
    assert "is the gateway running" not in said


async def _stopped_during_the_sync(tmp_path: Path, out: Path) -> tuple[int, int]:
    """A headless paper run on a simulator that answers the connect and holds back the contract details of its
    sync; SIGINT ends it while it waits for them. Returns the exit code and the simulator's port."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        sim.control.delay_messages("contract_details_end", 3600)
        settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                            broker={"port": sim.port, "connect_timeout": 30.0})
        running = asyncio.ensure_future(headless_run(settings, 60.0, out))
        await eventually(lambda: subscribing(sim), what="the connect made, its sync subscribing")
        os.kill(os.getpid(), signal.SIGINT)
        return await running, sim.port


def test_headless_run_when_stopped_during_the_sync_after_the_connect_then_no_working_link_and_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"

    code, port = asyncio.run(_stopped_during_the_sync(tmp_path, out))

    why = "stopped by SIGINT during the sync after the connect"
    assert code == NEVER_CONNECTED
    assert json.loads(out.read_text())["never_connected"] == why
    assert capsys.readouterr().out.rstrip().endswith(f"no working link to 127.0.0.1:{port}: {why}")


def _summary(**changes: Any) -> dict[str, Any]:
    """A headless summary of a paper run that never had a working link."""
    summary: dict[str, Any] = {
        "mode": "paper", "dry_run": False, "account": "", "trading_state": "ACTIVE", "trading_refused": "",
        "orders": {}, "denied": 0, "dry_run_orders": 0, "fills": 0, "realized_pnl": 0.0, "unrealized_pnl": 0.0,
        "never_connected": "", "nothing_to_trade": "", "positions_match": True}
    summary.update(changes)
    return summary


@pytest.mark.parametrize(("account", "why", "lead"), [
    ("", "connection refused (is the gateway running, listening on this port?)", "never connected to"),
    ("", "connected, but the sync failed: open orders request timed out", "no working link to"),  # before the account
    ("DU123", "connected, but the sync failed: reconciling: no answer within 8 s", "no working link to"),
])
def test_outcome_when_the_link_never_came_up_then_it_leads_in_by_whether_the_gateway_answered_the_connect(
        account: str, why: str, lead: str) -> None:
    line = outcome(_summary(account=account, never_connected=why), ConnectionInfo("127.0.0.1", 4002, client_id=1))

    assert line.endswith(f"; {lead} 127.0.0.1:4002: {why}")
