"""A running engine on the simulator halts on `tui-trader kill` and on the trigger file."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from tui_trader.config import Settings
from tui_trader.domain import OrderStatus, OrderType, TradingState
from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel
from tui_trader.domain.events import AlertRaised, KillSwitchReset, OperatorAction
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.errors import SafetyError
from tui_trader.ops.kill import EXIT_OK, out_of_band_kill
from tui_trader.ops.kill_journal import kill_state, latch
from tui_trader.ops.kill_watch import KillStateWatcher
from tui_trader.ops.reports import Period, build_report
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

from .conftest import eventually
from .engines import buy, make_engine

S = OrderStatus


@pytest.fixture
async def sim() -> AsyncIterator[SimGateway]:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        yield gw


@pytest.fixture
async def engine(sim: SimGateway, tmp_path: Path) -> AsyncIterator[Engine]:
    eng = make_engine(sim, tmp_path, trigger_file=tmp_path / "KILL")
    await eng.start()
    await eventually(lambda: "AAPL" in eng.market.quotes, what="first quote")
    yield eng
    await eng.stop()


async def test_cli_kill_while_engine_runs_then_halted_within_a_second_and_orders_cancelled(
        engine: Engine, sim: SimGateway, tmp_path: Path) -> None:
    price = round(engine.market.quotes["AAPL"].bid * 0.9, 2)
    orders = [await engine.submit(buy(q, order_type=OrderType.LMT, limit_price=price)) for q in (1, 2)]
    await eventually(lambda: all(engine.orders.orders[o.order_ref].status is S.SUBMITTED for o in orders))
    # The simulator stands in for a paper gateway (a --sim kill goes where the engine's own simulator listens).
    settings = Settings(mode="paper", state_dir=tmp_path, broker={"port": sim.port},
                        kill_switch={"kill_client_id": 55})
    journal = engine.config.journal_path
    assert journal is not None
    code = await out_of_band_kill(settings, "console frozen", by="ops", journal_path=journal,
                                  console=Console(file=io.StringIO()))
    assert code == EXIT_OK
    await eventually(lambda: engine.trading_state is TradingState.HALTED, within=1.0, what="engine halted")
    assert engine.snapshot().kill_engaged
    await eventually(lambda: all(engine.orders.orders[o.order_ref].status is S.CANCELLED for o in orders))
    assert not [o for o in sim.orders() if o.working]
    denied = await engine.submit(buy(1))
    assert denied.status is S.REJECTED


async def test_trigger_file_appears_then_engine_halts_and_journals_operator_action(engine: Engine,
                                                                                    tmp_path: Path) -> None:
    (tmp_path / "KILL").write_text("stop\n")
    await eventually(lambda: engine.trading_state is TradingState.HALTED, what="engine halted")
    assert engine.journal is not None
    await engine.journal.flush()
    actions = [e for e in await engine.journal.events(["OperatorAction"]) if isinstance(e, OperatorAction)]
    assert [(a.who, a.action) for a in actions] == [("trigger_file", "kill")]


async def test_reset_when_the_trigger_file_is_still_there_then_refused_naming_it_until_it_is_removed(
        engine: Engine, tmp_path: Path) -> None:
    # The next tick engaged the kill switch again after the reset: it seemed not to take, and nothing said why.
    trigger = tmp_path / "KILL"
    trigger.write_text("stop\n")
    await eventually(lambda: engine.trading_state is TradingState.HALTED, what="engine halted")
    with pytest.raises(SafetyError, match=f"the trigger file {trigger} is still there"):
        engine.reset_kill("checked the positions", confirm_same_day=True)
    assert engine.risk.kill_state.engaged

    trigger.unlink()
    engine.reset_kill("checked the positions", confirm_same_day=True)
    assert engine.trading_state is TradingState.ACTIVE


def trigger_alerts(events: Subscription, trigger: Path) -> list[Alert]:
    return [e.alert for e in events.drain() if isinstance(e, AlertRaised) and str(trigger) in e.alert.text]


async def test_trigger_file_when_it_cannot_be_checked_then_one_error_naming_it_and_said_again_when_it_can(
        sim: SimGateway, tmp_path: Path) -> None:
    """Its parent a regular file (NotADirectoryError; a PermissionError the same): ``touch`` cannot create it, and
    the check read "not there" in silence, so an operator counting on it to stop trading believed it armed."""
    parent = tmp_path / "ops"
    parent.write_text("not a directory\n")
    trigger = parent / "KILL"
    engine = make_engine(sim, tmp_path, trigger_file=trigger)
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        for _ in range(3):
            engine.tick()
        (error,) = trigger_alerts(events, trigger)  # once, not every tick
        assert error.level is AlertLevel.ERROR
        assert "cannot be checked" in error.text
        assert "Not a directory" in error.text
        assert "would NOT engage the kill switch" in error.text

        parent.unlink()
        parent.mkdir()
        engine.tick()
        engine.tick()
        (recovered,) = trigger_alerts(events, trigger)
        assert recovered.level is AlertLevel.INFO
        assert "can be checked again" in recovered.text
        assert engine.trading_state is TradingState.ACTIVE

        trigger.write_text("stop\n")
        engine.tick()
        assert engine.trading_state is TradingState.HALTED
    finally:
        await engine.stop()


async def test_trigger_file_when_a_directory_is_at_its_path_then_it_counts_as_appeared(
        sim: SimGateway, tmp_path: Path) -> None:
    """Something is at the path: the kill switch engages (the safe reading), no 'cannot be checked' alert."""
    trigger = tmp_path / "KILL"
    trigger.mkdir()
    engine = make_engine(sim, tmp_path, trigger_file=trigger)
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        engine.tick()
        assert engine.trading_state is TradingState.HALTED
        assert not [a for a in trigger_alerts(events, trigger) if "cannot be checked" in a.text]
    finally:
        await engine.stop()


async def test_cli_kill_latched_as_the_engine_stops_then_kept_and_the_next_start_is_halted(
        sim: SimGateway, tmp_path: Path) -> None:
    """The stop saved the engine's own kill state (not engaged) over a latch its watcher had not polled yet (it
    polls every quarter second): the restart traded, the operator's kill undone."""
    engine = make_engine(sim, tmp_path)
    await engine.start()
    journal = engine.config.journal_path
    assert journal is not None
    await latch(journal, "ops", "console frozen", datetime.now(UTC))
    await engine.stop()

    restarted = make_engine(sim, tmp_path)
    await restarted.start()
    try:
        kill = restarted.risk.kill_state
        assert (kill.engaged, kill.by, kill.reason) == (True, "ops", "console frozen")
        assert restarted.trading_state is TradingState.HALTED
    finally:
        await restarted.stop()


async def test_engine_save_when_an_unseen_cli_latch_is_in_the_journal_then_it_is_kept_a_seen_one_overwritten(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    when = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    await latch(path, "ops", "console frozen", when)
    released = {"engaged": False, "by": "", "reason": ""}
    journal = await Journal.open(path)
    try:
        await journal.save_kill_state(released, when, seen_out_of_band=frozenset({"2026-11-25T14:00:00+00:00"}))
        assert (await journal.load_kill_state() or {}).get("by") == "ops"  # another latch seen: this one kept

        await journal.save_kill_state(released, when, seen_out_of_band=frozenset({when.isoformat()}))
        assert (await journal.load_kill_state() or {}).get("engaged") is False  # acted on: the engine's save wins

        await latch(path, "ops", "again", when)
        await journal.save_kill_state(released, when)  # the kill command's own write: as it is
        assert (await journal.load_kill_state() or {}).get("engaged") is False

        await journal.save_kill_state({"engaged": True, "by": "risk:daily_loss"}, when, seen_out_of_band=frozenset())
        await journal.save_kill_state(released, when, seen_out_of_band=frozenset())  # the engine's own latch
        assert (await journal.load_kill_state() or {}).get("engaged") is False
    finally:
        await journal.close()


def test_watcher_when_the_engine_restored_a_cli_latch_then_it_is_seen_and_never_fires_again() -> None:
    restored = kill_state("ops", "console frozen", datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    fired: list[str] = []
    watcher = KillStateWatcher(_no_state, lambda reason, by: fired.append(reason), lambda: False,
                               restored=restored)
    assert watcher.seen == {restored["engaged_at"]}
    assert not watcher.consider(restored)
    assert not fired


async def _no_state() -> None:
    return None


async def test_restart_after_the_console_latched_as_its_engine_process_died_then_said_in_the_consoles_zone_and_why(
        sim: SimGateway, tmp_path: Path) -> None:
    # Found by QA: "kill switch still engaged from 2026-11-25T04:53:07.142565+00:00 by console: console worker
    # 'bridge-events' crashed: EngineProcessDied: …", UTC with microseconds while the console shows New York time.
    engine = make_engine(sim, tmp_path, time_zone="America/New_York")
    journal = engine.config.journal_path
    assert journal is not None
    reason = "latched when the engine process died (killed by signal 9); orders at the broker were left as they were"
    await latch(journal, "console", reason, datetime(2026, 11, 25, 4, 53, 7, 142565, tzinfo=UTC))
    events = engine.subscribe("test", lossless=True)

    await engine.start()
    try:
        restored = [e.alert.text for e in events.drain()
                    if isinstance(e, AlertRaised) and e.alert.kind == "kill_restored"]
        assert restored == [f"kill switch still engaged from 2026-11-24 23:53:07 EST by console: {reason}"]
        assert engine.trading_state is TradingState.HALTED
    finally:
        await engine.stop()


async def test_cli_kill_while_engine_runs_then_one_kill_in_the_report_the_engines_record_is_taking_the_latch(
        engine: Engine, sim: SimGateway, tmp_path: Path) -> None:
    # Found by QA: `tui-trader kill --sim` while the console ran read as two kills: operator_actions had `kill` twice
    # (the command's, before empty, and the engine's, ACTIVE → HALTED) and kill_switch `engaged` twice, 54 ms apart.
    journal = engine.config.journal_path
    assert journal is not None
    await latch(journal, "kill-cli:ops@host", "console frozen", datetime.now(UTC))
    await eventually(lambda: engine.trading_state is TradingState.HALTED, within=1.0, what="engine halted")
    await eventually(lambda: engine.risk.kill_state.engaged, what="the latch taken")
    assert engine.journal is not None
    await engine.journal.flush()

    kinds = [e.kind for e in await engine.journal.events(["KillSwitchEngaged", "KillLatchTaken", "OperatorAction"])]
    today = datetime.now(ZoneInfo("America/New_York")).date()
    report = await build_report(engine.journal, Period(today, today))

    assert kinds == ["KillSwitchEngaged", "OperatorAction", "KillLatchTaken"]  # the command's two, then the engine's
    assert [a["action"] for a in report["operator_actions"]] == ["kill"]
    assert [(k["event"], k["by"]) for k in report["kill_switch"] if k["event"] == "engaged"] == [
        ("engaged", "kill-cli:ops@host")]


async def test_engine_reset_journaled_when_a_cli_latch_landed_first_then_the_latch_is_kept(tmp_path: Path) -> None:
    # Found in review: the row derived from a journaled KillSwitchReset (or KillSwitchEngaged) wrote over the latch
    # unguarded: a `tui-trader kill` landing as the operator reset in the console was erased, and the engine traded.
    path = tmp_path / "journal.db"
    when = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    journal = await Journal.open(path)
    try:
        journal.append(KillSwitchReset(when, "alice", "checked"))  # the engine's, still in its batch
        await latch(path, "ops", "console frozen", when)
        await journal.flush()

        state = await journal.load_kill_state() or {}
        assert (state.get("engaged"), state.get("out_of_band"), state.get("by")) == (True, True, "ops")
    finally:
        await journal.close()
