"""A headless run's stderr says when the link is made and back, and when a block it printed is lifted: it printed
WARNING and up only, so it ended with "could not connect … trying again in 17 s" after the link was back, and with
"new entries blocked: …" lifted a millisecond later (the lifts are INFO)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui_trader.config import Settings
from tui_trader.domain import Mode
from tui_trader.engine.engine import Engine
from tui_trader.engine.runner import StderrAlerts, StderrFollow, headless_run
from tui_trader.sim import ManualClock, SimGateway

from .helpers import eventually, make_config, make_engine
from .test_ever_linked import drop_the_sync

RECONNECTED = "reconnected and reconciled: new entries no longer blocked by the lost link"


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """A record logged so far says ``text``."""
    return any(text in r.getMessage() for r in caplog.records)


async def _run_with_an_outage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> int:
    """A headless paper run on a simulator that drops it, then drops the sync of its first reconnect, then lets it
    in; SIGINT ends it once it is back. Returns the simulator's port."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                            broker={"port": sim.port, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.1,
                                    # a retry that went out before the hold was lifted waits 1 s for its answer
                                    "connect_timeout": 1})
        running = asyncio.ensure_future(headless_run(settings, 60.0, None))
        await eventually(lambda: logged(caplog, "broker: connected to"), what="the link made")
        sim.control.delay_messages("contract_details_end", 3600)
        sim.received_frames.clear()
        sim.control.drop_sessions()
        await drop_the_sync(sim)
        await eventually(lambda: logged(caplog, "but the sync failed"), what="a reconnect's sync dropped")
        sim.control.delay_messages("contract_details_end", 0)
        await eventually(lambda: logged(caplog, RECONNECTED), what="the link back")
        os.kill(os.getpid(), signal.SIGINT)
        await running
        return sim.port


def test_headless_run_when_the_link_is_lost_and_back_then_stderr_says_it_was_made_and_is_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tui_trader.engine")
    port = asyncio.run(_run_with_an_outage(tmp_path, caplog))

    broker = re.findall(r"^\S+ (\w+) +broker: (.*?)(?:[:;] .*)?$", capsys.readouterr().err, re.MULTILINE)
    assert broker == [("INFO", f"connecting to 127.0.0.1:{port} (timeout 1 s)..."),
                      ("INFO", f"connected to 127.0.0.1:{port}"),
                      ("ERROR", "disconnected from the broker"),
                      ("WARNING", f"connected to 127.0.0.1:{port} but the sync failed"),
                      ("INFO", "reconnected and reconciled")]


@contextlib.asynccontextmanager
async def _stderr_followed(tmp_path: Path) -> AsyncIterator[tuple[SimGateway, Engine]]:
    """An engine started on a simulator, its stderr said as a headless run's is (alerts and :class:`StderrFollow`);
    stopped, and what was still queued said, on leaving."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as sim:
        engine = make_engine(sim, make_config(tmp_path))
        alerts = StderrAlerts()
        follow = StderrFollow(engine, alerts)
        await engine.start()
        try:
            yield sim, engine
        finally:
            await engine.stop()
            follow.flush()
            alerts.close()


async def test_stderr_when_a_block_said_there_is_lifted_then_the_lift_is_said_there_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with _stderr_followed(tmp_path) as (_, engine):
        engine.block("unknown_fill", "a fill arrived for an order this engine does not know")
        engine.unblock("unknown_fill")

    said = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines() if " engine: " in line]
    assert said == ["ERROR    engine: new entries blocked: a fill arrived for an order this engine does not know",
                    "INFO     engine: entry block lifted: a fill arrived for an order this engine does not know"]


async def test_stderr_when_a_halt_said_there_is_over_then_the_resume_is_said_there_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # stderr's lifts were a list of their own (blocks, the link, the schedule) beside the notifications' conditions: a
    # halt, a farm, a health figure said there never had its end said there. One list now (condition_of).
    async with _stderr_followed(tmp_path) as (sim, engine):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quotes")
        sim.control.halt("AAPL")
        await eventually(lambda: engine.market.quotes["AAPL"].halted, what="AAPL halted")
        sim.control.resume("AAPL")
        await eventually(lambda: not engine.market.quotes["AAPL"].halted, what="AAPL resumed")

    said = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines() if " market: " in line]
    assert [s.split(":", 1)[0] for s in said] == ["WARNING  market", "INFO     market"]
    assert said[1] == "INFO     market: AAPL resumed: the trading halt at the exchange is over"
