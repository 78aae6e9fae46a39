"""A headless run's start says what it is doing: the connect it waits for, nothing to trade, a stop before it
connected."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from ops.servers import closed_port

from tui_trader.config import Settings, StrategySettings
from tui_trader.domain import Mode
from tui_trader.engine import runner
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.engine.runner import NEVER_CONNECTED, NOTHING_TO_TRADE, headless_run, no_strategy_enabled, run_headless

from .helpers import eventually, hold_simulator_start, silent_gateway


def test_headless_run_when_no_strategy_is_enabled_then_it_says_nothing_to_trade_and_stops_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every strategy enabled = false: the run went on to its end doing nothing and exited 0.
    off = [StrategySettings(name=name, symbols=["AAPL"], bar_size_s=5, enabled=False)
           for name in ("ema_cross", "volume_breakout")]
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path, strategies=off,
                        sim={"port": 0, "seed": 7})
    out = tmp_path / "summary.json"

    began = time.monotonic()
    code = run_headless(settings, 60.0, out)
    took = time.monotonic() - began

    why = "no strategy is enabled (ema_cross, volume_breakout: enabled = false)"
    assert code == NOTHING_TO_TRADE
    assert took < 15, f"it ran {took:.0f} s of its 60"
    said = capsys.readouterr()
    assert f"ERROR    strategies: nothing to trade: {why}\n" in said.err
    assert said.out.rstrip().endswith(f"nothing to trade: {why}")
    summary = json.loads(out.read_text())
    assert summary["nothing_to_trade"] == why
    assert summary["account"].startswith("DU")  # connected first: its positions are the broker's, compared
    assert summary["positions_match"] is True


def test_no_strategy_enabled_names_the_disabled_ones_once_and_is_empty_when_one_is_enabled() -> None:
    ema, ema_off = StrategySettings(name="ema_cross"), StrategySettings(name="ema_cross", enabled=False)
    macd_off = StrategySettings(name="macd", enabled=False)
    assert no_strategy_enabled([ema_off, macd_off, ema_off]) == \
        "no strategy is enabled (ema_cross, macd: enabled = false)"
    assert no_strategy_enabled([]) == "no strategy is configured"
    assert no_strategy_enabled([ema_off, ema]) == ""


async def _stopped_while_its_simulator_starts(settings: Settings, out: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A headless run that gets SIGINT while its embedded simulator starts (held there until the run has stopped).

    Sent only once the run's own handler has taken SIGINT over, else it would reach asyncio.run's (which cancels
    this coroutine; asyncio.run then raises KeyboardInterrupt, which ends the whole test session) or Python's
    default one (a KeyboardInterrupt raised in whatever Python code runs next, a gc callback's included). The
    start goes on only once the run has stopped on it: the stop is asked while the simulator starts, provably.
    """
    held = hold_simulator_start(monkeypatch)
    engines: list[Engine] = []

    def create(settings: Settings) -> Engine:
        engines.append(create_engine(settings))
        return engines[-1]

    monkeypatch.setattr(runner, "create_engine", create)
    before = signal.getsignal(signal.SIGINT)  # asyncio.run's own
    run = asyncio.ensure_future(headless_run(settings, 60.0, out))
    await eventually(held.entered.is_set, what="the run starting its simulator")
    assert signal.getsignal(signal.SIGINT) not in (before, signal.default_int_handler), "SIGINT is not the run's"
    os.kill(os.getpid(), signal.SIGINT)
    await eventually(lambda: engines[0].stopping, what="the run stopping on SIGINT")
    held.go.set()
    return await run


def test_headless_sim_run_when_stopped_while_its_simulator_starts_then_it_says_so_not_that_no_gateway_answered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # It said "never connected to 127.0.0.1:P: no answer before the run ended (is the gateway running, its API
    # enabled?)": the words for a gateway that does not answer, of a simulator this run was starting itself.
    port = closed_port()
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path,
                        sim={"port": port, "seed": 7})
    out = tmp_path / "summary.json"

    assert asyncio.run(_stopped_while_its_simulator_starts(settings, out, monkeypatch)) == NEVER_CONNECTED

    why = "stopped by SIGINT while starting the simulator"
    assert json.loads(out.read_text())["never_connected"] == why
    said = capsys.readouterr()
    assert said.out.rstrip().endswith(f"never connected to 127.0.0.1:{port}: {why}")
    assert "no answer" not in said.out + said.err


def test_headless_run_when_the_gateway_never_answers_then_it_says_once_that_it_is_connecting_and_for_how_long(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A gateway that accepts and never answers held the first connect for its whole timeout with nothing on
    # stderr: the run looked hung.
    with silent_gateway() as port:
        settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                            broker={"port": port, "connect_timeout": 30.0})
        assert run_headless(settings, 1.0, None) == NEVER_CONNECTED
    err = capsys.readouterr().err
    assert f"INFO     broker: connecting to 127.0.0.1:{port} (timeout 30 s)...\n" in err
    assert err.count("connecting to") == 1


def test_headless_run_when_the_connect_is_refused_again_and_again_then_the_connecting_line_is_said_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # Each attempt is logged, not said: a dead gateway tried every few seconds is not a line every few seconds.
    port = closed_port()
    settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                        broker={"port": port, "connect_timeout": 1.0, "reconnect_initial_s": 0.05,
                                "reconnect_max_s": 0.1})
    with caplog.at_level(logging.INFO, logger="tui_trader.engine"):
        assert run_headless(settings, 1.0, None) == NEVER_CONNECTED
    attempts = sum("could not connect" in r.getMessage() for r in caplog.records)
    assert attempts >= 3, f"{attempts} attempts"  # else the premise fails: the run tried more than once
    err = capsys.readouterr().err
    assert err.count(f"INFO     broker: connecting to 127.0.0.1:{port} (timeout 1 s)...\n") == 1
    assert err.count("could not connect") == 1
