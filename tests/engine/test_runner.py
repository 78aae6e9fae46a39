"""The headless runner and the factory: --headless --sim trades and writes a consistent summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ops.servers import closed_port

from tui_trader.config import Settings
from tui_trader.domain import Mode, OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.engine.runner import (
    NEVER_CONNECTED,
    NO_ANSWER,
    NOTHING_TO_TRADE,
    outcome,
    run_headless,
    summarize,
)
from tui_trader.ops.gateway_endpoint import endpoint_path
from tui_trader.ops.kill import latch
from tui_trader.sim import SimGateway
from tui_trader.store.journal import Journal
from tui_trader.store.lock import JournalLock

from .helpers import buy, eventually, hold_simulator_start, silent_gateway, status


def test_headless_sim_run_trades_and_summary_agrees_with_the_broker(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path,
                        sim={"port": 0, "seed": 7})
    out = tmp_path / "summary.json"
    assert run_headless(settings, 12.0, out) == 0
    said = capsys.readouterr().out
    assert said.startswith("tui-trader headless sim account DU")
    assert said.rstrip().endswith("positions match the broker's")
    summary = json.loads(out.read_text())
    for key in ("mode", "account", "trading_state", "kill_engaged", "orders", "fills", "positions",
                "realized_pnl", "unrealized_pnl", "commissions", "alerts", "reconnects"):
        assert key in summary
    assert summary["mode"] == "sim"
    assert summary["account"].startswith("DU")
    assert summary["fills"] > 0
    assert summary["positions"] == summary["broker_positions"]
    assert summary["commissions"] > 0


async def test_summary_when_made_after_the_stop_then_final_and_compared_with_the_brokers_last_positions(
        sim: SimGateway, engine: Engine) -> None:
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is OrderStatus.FILLED, what="buy filled")
    await eventually(lambda: any(p.symbol == "AAPL" and p.quantity == 10 for p in engine.broker.positions()),
                     what="the broker's position streamed")
    await engine.stop()  # the runner summarizes after this: a fill that comes while stopping is counted
    assert not engine.broker.positions()  # ib_async forgets them at the disconnect
    summary = summarize(engine)
    assert summary["positions"] == summary["broker_positions"] == {"AAPL": 10} == sim.positions()
    assert summary["positions_match"] is True
    assert summary["fills"] == len(sim.executions()) == 1


async def test_summary_when_the_gate_denies_an_order_then_its_rejection_is_counted_as_a_denial(
        sim: SimGateway, engine: Engine) -> None:
    # REJECTED alone reads as the broker's refusal: the summary says how many of them never left the engine.
    filled = await engine.submit(buy(10))
    denied = await engine.submit(buy(1_000_000))
    await eventually(lambda: status(engine, filled.order_ref) is OrderStatus.FILLED, what="buy filled")
    assert status(engine, denied.order_ref) is OrderStatus.REJECTED
    await engine.stop()
    summary = summarize(engine)
    assert summary["orders"] == {"FILLED": 1, "REJECTED": 1}
    assert (summary["denied"], summary["dry_run_orders"]) == (1, 0)
    assert "orders 1 FILLED, 1 REJECTED (1 denied by risk);" in outcome(summary, engine.connection)


def test_headless_dry_run_then_the_orders_it_would_have_sent_are_counted_as_such(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A dry run's orders end CANCELLED (never sent); the summary says they are the dry run's, not cancels.
    settings = Settings(mode=Mode.SIM, confirm=False, dry_run=True, headless=True, state_dir=tmp_path,
                        sim={"port": 0, "seed": 7, "speed": 5.0})
    out = tmp_path / "summary.json"
    assert run_headless(settings, 6.0, out) == 0
    summary = json.loads(out.read_text())
    assert summary["dry_run"] is True
    assert summary["fills"] == 0
    assert summary["dry_run_orders"] > 0, "the strategies should have traded within the run"
    assert summary["dry_run_orders"] == summary["orders"].get("CANCELLED")
    assert f"({summary['dry_run_orders']} dry run);" in capsys.readouterr().out


def test_headless_paper_run_when_no_gateway_answers_then_it_says_so_and_exits_non_zero(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It printed nothing and exited 0: a server's cron job could not tell a dead gateway from a quiet day.
    port = closed_port()
    settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                        broker={"port": port, "connect_timeout": 1.0})
    out = tmp_path / "summary.json"
    assert run_headless(settings, 2.0, out) == NEVER_CONNECTED
    said = capsys.readouterr()
    assert f"never connected to 127.0.0.1:{port}: connection refused (is the gateway running" in said.out
    assert re.search(rf"ERROR    broker: could not connect to 127\.0\.0\.1:{port}: connection refused \(.*\); "
                     r"trying again in \d+\.\d s\n", said.err)
    assert "disconnected" not in said.err  # it never was connected
    summary = json.loads(out.read_text())
    assert summary["account"] == ""
    assert summary["never_connected"].startswith("connection refused")


def test_headless_run_when_the_gateway_never_answers_then_it_ends_at_its_duration_saying_it_never_connected(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A connect under way was waited out past the end: --duration 25 against a port that accepted and never
    # answered took 35.8 s (the 10 s connect timeout, then the whole duration).
    with silent_gateway() as port:
        settings = Settings(mode=Mode.PAPER, headless=True, state_dir=tmp_path,
                            broker={"port": port, "connect_timeout": 30.0})
        out = tmp_path / "summary.json"
        began = time.monotonic()
        assert run_headless(settings, 1.0, out) == NEVER_CONNECTED
        took = time.monotonic() - began
    assert took < 5.0, f"a 1 s run took {took:.1f} s"  # the connect timeout is 30 s
    assert json.loads(out.read_text())["never_connected"] == NO_ANSWER
    assert f"never connected to 127.0.0.1:{port}: {NO_ANSWER}" in capsys.readouterr().out


def test_headless_cli_when_no_chosen_symbol_is_known_then_it_says_nothing_to_trade_and_stops_at_once(
        tmp_path: Path) -> None:
    # --symbols ZZZZ said "unknown symbol ZZZZ: not traded", then that its strategies "wait for 26 live bars
    # before they trade", and the run went on to its end doing nothing and exited 0.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUI_TRADER_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    out = tmp_path / "summary.json"
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tui_trader.cli", "--headless", "--sim", "--symbols", "ZZZZ",
                           "--duration", "60", "--summary-json", str(out)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    took = time.monotonic() - began
    assert proc.returncode == NOTHING_TO_TRADE, proc.stderr
    assert took < 30, f"it ran {took:.0f} s of its 60"
    assert "ERROR    market_data: unknown symbol ZZZZ: the broker has no such stock" in proc.stderr
    assert "ERROR    strategies: nothing to trade: the broker knows none of the strategies' symbols (ZZZZ)" \
        in proc.stderr
    assert "live bars" not in proc.stderr
    assert proc.stdout.rstrip().endswith("nothing to trade: the broker knows none of the strategies' symbols (ZZZZ)")
    summary = json.loads(out.read_text())
    assert summary["account"].startswith("DU")
    assert summary["nothing_to_trade"] == "the broker knows none of the strategies' symbols (ZZZZ)"


async def test_sim_engine_when_run_again_in_the_same_state_dir_then_the_simulated_broker_goes_on(
        tmp_path: Path) -> None:
    # A working order left by one --sim run was unknown to the next run's fresh simulator: UNKNOWN, entries
    # blocked, and after 30 s the kill switch with the order "STILL WORKING" where no broker had it.
    from tui_trader.domain import OrderType

    settings = Settings(mode=Mode.SIM, confirm=False, state_dir=tmp_path, sim={"port": 0, "seed": 7})
    first = create_engine(settings)
    await first.start()
    await eventually(lambda: "AAPL" in first.market.quotes, what="quotes")
    limit = round(first.market.quotes["AAPL"].bid * 0.97, 2)
    resting = await first.submit(buy(5, order_type=OrderType.LMT, limit_price=limit))
    filled = await first.submit(buy(3))
    await eventually(lambda: status(first, resting.order_ref) is OrderStatus.SUBMITTED
                     and status(first, filled.order_ref) is OrderStatus.FILLED, what="one working, one filled")
    await first.stop()

    second = create_engine(settings)
    await second.start()
    await eventually(lambda: not second.blocks, what="reconciled with nothing blocked")
    assert status(second, resting.order_ref) is OrderStatus.SUBMITTED
    assert second.portfolio.quantity("AAPL") == 3
    assert second.broker_quantities() == {"AAPL": 3}
    assert not second.risk.kill_state.engaged
    await second.stop()
    assert settings.sim_state_path == tmp_path / "journal-sim.sqlite-sim.json"
    assert settings.sim_state_path.stat().st_mode & 0o777 == 0o600  # as the journal: the owner's only


async def test_sim_engine_when_stopped_while_its_simulator_starts_then_that_simulator_is_stopped_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stop that came while the embedded simulator was starting (a headless --duration shorter than its start,
    # a SIGINT then) found no simulator to stop: the one the start brought up after it kept its port open and its
    # <journal>.gateway file, and the simulated account was never saved.
    port = closed_port()
    settings = Settings(mode=Mode.SIM, confirm=False, state_dir=tmp_path, sim={"port": port, "seed": 7})
    held = hold_simulator_start(monkeypatch)
    engine = create_engine(settings)
    starting = asyncio.ensure_future(engine.start())
    await eventually(held.entered.is_set, what="the start holding the journal's lock, starting the simulator")
    await engine.stop()
    assert not endpoint_path(settings.journal_path).exists()  # the stop came before the simulator listened

    held.go.set()  # the real simulator starts now, after the stop
    await starting

    assert not endpoint_path(settings.journal_path).exists()
    JournalLock.check(settings.journal_path)  # let go of
    assert settings.sim_state_path.exists()  # the simulated account saved, as at a clean stop
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(settings.sim.host, port)
    assert not engine.started


async def _journaled(settings: Settings) -> tuple[int, float, float]:
    """The journal's fills, their commissions and the realized P&L (net) of its last book checkpoint."""
    journal = await Journal.open(settings.journal_path)
    try:
        fills = await journal.fills()
        book = (await journal.book_events(["BookCheckpointed"]))[-1].state  # type: ignore[attr-defined]
    finally:
        await journal.close()
    return len(fills), sum(f.commission or 0.0 for f in fills), book["realized_gross"] - book["commissions"]


def test_headless_run_again_on_the_same_journal_then_its_pnl_and_commissions_are_its_own(
        tmp_path: Path) -> None:
    # The second run's summary said the commissions (and realized P&L) of both runs beside its own fills
    # only: the book goes on from run to run, the summary took its totals.
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path,
                        sim={"port": 0, "seed": 7, "speed": 10.0})
    runs = []
    for n in (1, 2):
        out = tmp_path / f"summary-{n}.json"
        assert run_headless(settings, 4.0, out) == 0
        runs.append(json.loads(out.read_text()))
    first, second = runs
    assert first["commissions"] > 0, "the first run should have traded"
    fills, commissions, realized = asyncio.run(_journaled(settings))
    assert first["fills"] + second["fills"] == fills
    assert first["commissions"] + second["commissions"] == pytest.approx(commissions, abs=1e-5)
    assert first["realized_pnl"] + second["realized_pnl"] == pytest.approx(realized, abs=1e-5)


def test_headless_run_when_the_kill_switch_is_latched_then_it_exits_0_and_the_summary_says_halted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # README: only a run that never reached the broker exits non-zero; a halted one says so in its summary.
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path,
                        sim={"port": 0, "seed": 7, "speed": 5.0})
    asyncio.run(latch(settings.journal_path, "tester", "latched before the run", datetime.now(UTC)))
    out = tmp_path / "summary.json"
    assert run_headless(settings, 2.0, out) == 0
    summary = json.loads(out.read_text())
    assert (summary["trading_state"], summary["kill_engaged"]) == ("HALTED", True)
    assert summary["alerts"]["CRITICAL"] >= 1  # the latched kill, said at start
    assert set(summary["orders"]) <= {"REJECTED"}  # the strategies' signals, denied by the risk gate
    assert summary["fills"] == 0
    assert ": HALTED; orders " in capsys.readouterr().out


def test_headless_run_when_its_start_fails_after_the_journal_opened_then_the_error_and_the_journal_closed(
        tmp_path: Path) -> None:
    # The runner stopped the engine only once started: a start that failed after the journal opened (here its
    # latched kill state unreadable) left the journal open, and aiosqlite's thread (not a daemon) kept the
    # process from exiting after the error.
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path, sim={"port": 0, "seed": 7})
    asyncio.run(latch(settings.journal_path, "tester", "latched before the run", datetime.now(UTC)))
    with contextlib.closing(sqlite3.connect(settings.journal_path)) as db, db:
        db.execute("UPDATE kill_state SET payload = '{damaged'")

    with pytest.raises(json.JSONDecodeError):
        run_headless(settings, 2.0, None)

    JournalLock.check(settings.journal_path)  # let go of: the journal was closed
