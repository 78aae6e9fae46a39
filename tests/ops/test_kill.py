"""Out-of-band kill: journal latch, global cancel against the simulator, the engine-side watcher."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ib_async
import pytest
from ib_async import LimitOrder
from rich.console import Console

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.config import Settings
from tui_trader.domain import OrderType, Side
from tui_trader.domain.events import OperatorAction
from tui_trader.errors import UsageError
from tui_trader.ops.kill import (
    EXIT_ACCOUNT_REFUSED,
    EXIT_CLIENT_ID_IN_USE,
    EXIT_NOT_LATCHED,
    EXIT_NOT_REACHED,
    EXIT_OK,
    EXIT_OTHER_ENGINE,
    CancelReport,
    GatewayTarget,
    out_of_band_kill,
    print_report,
)
from tui_trader.ops.kill_cli import run_kill
from tui_trader.ops.kill_watch import KillStateWatcher
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal
from tui_trader.store.lock import JournalLock

from .conftest import eventually
from .servers import closed_port

TRADER_CLIENT = 7


@pytest.fixture
async def sim() -> AsyncIterator[SimGateway]:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        yield gw


def settings_for(tmp_path: Path, port: int, **changes: Any) -> Settings:
    """A gateway at ``port`` (the test's simulator, standing in for IB's paper gateway): the ``--sim`` kill goes
    to the simulator its running engine said it listens on (tests/ops/test_kill_cli.py)."""
    base: dict[str, Any] = dict(mode="paper", state_dir=tmp_path, broker={"port": port},
                                kill_switch={"kill_client_id": 55})
    base.update(changes)
    return Settings(**base)


async def kill_printed(tmp_path: Path, port: int, reason: str = "console frozen",
                       **options: Any) -> tuple[int, str]:
    """``tui-trader kill`` by "tester" at the gateway on ``port``: its exit code and what it printed."""
    out = io.StringIO()
    code = await out_of_band_kill(settings_for(tmp_path, port), reason, by="tester",
                                  console=Console(file=out, soft_wrap=True), **options)
    return code, out.getvalue()


async def resting_orders(gw: SimGateway, refs: list[str]) -> tuple[ib_async.IB, list[ib_async.Trade]]:
    """A real ib_async client with limit buys far below the market, all working."""
    ib = ib_async.IB()
    await ib.connectAsync(gw.host, gw.port, clientId=TRADER_CLIENT, timeout=3, raiseSyncErrors=True)
    (aapl,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    gw.control.set_quote("AAPL", 100.00, 100.02)
    trades = [ib.placeOrder(aapl, LimitOrder("BUY", 10, 80.0 + i, orderRef=ref)) for i, ref in enumerate(refs)]
    await eventually(lambda: all(t.orderStatus.status == "Submitted" for t in trades), what="orders working")
    return ib, trades


async def test_kill_with_working_orders_then_all_cancelled_and_journal_latched(sim: SimGateway,
                                                                               tmp_path: Path) -> None:
    ib, trades = await resting_orders(sim, ["ref-a", "ref-b", "ref-c"])
    out = io.StringIO()
    code = await out_of_band_kill(settings_for(tmp_path, sim.port), "console frozen", by="tester",
                                  console=Console(file=out, soft_wrap=True))
    assert code == EXIT_OK
    await eventually(lambda: all(t.orderStatus.status == "Cancelled" for t in trades), what="cancelled")
    printed = out.getvalue()
    assert "3 cancelled, 0 still working" in printed
    assert all(ref in printed for ref in ("ref-a", "ref-b", "ref-c"))
    journal = await Journal.open(tmp_path / "journal-paper.sqlite")
    state = await journal.load_kill_state()
    actions = [(e.action, e.after) for e in await journal.events(["OperatorAction"])]  # type: ignore[attr-defined]
    await journal.close()
    assert state is not None
    assert state["engaged"] is True
    assert state["out_of_band"] is True
    assert state["reason"] == "console frozen"
    assert actions == [("kill", "HALTED"), ("global_cancel", "0 still working")]
    ib.disconnect()


async def test_kill_paper_when_the_gateway_is_logged_into_a_live_account_then_latched_nothing_cancelled_exits_8(
        tmp_path: Path) -> None:
    # The engine refuses to trade a live account in --paper (nothing sent, its kill's cancels neither); the kill
    # command connected and sent its global cancel there: a live account's stops cancelled by a --paper kill.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True, live_account=True) as live:
        ib, trades = await resting_orders(live, ["live-stop"])

        code, printed = await kill_printed(tmp_path, live.port)

        assert code == EXIT_ACCOUNT_REFUSED
        assert [(o.order_ref, o.status) for o in live.orders()] == [("live-stop", "Submitted")]  # at the gateway
        assert [t.orderStatus.status for t in trades] == ["Submitted"]
        assert "--paper but account USIM0001 is not a paper account" in " ".join(printed.split())
        journal = await Journal.open(tmp_path / "journal-paper.sqlite")
        state = await journal.load_kill_state()
        await journal.close()
        assert state is not None
        assert state["engaged"] is True
        ib.disconnect()


async def test_kill_when_the_journal_is_locked_then_the_cancel_does_not_wait_for_the_latch(
        sim: SimGateway, tmp_path: Path) -> None:
    """A frozen engine stuck inside a write holds the journal's lock: the kill raised 'database is locked'
    (a traceback, exit 1) and never sent the global cancel it is there for; then it sent it only once the
    latch had waited out SQLite's busy timeouts (15 s). Now the cancel goes while the latch still waits."""
    path = tmp_path / "journal-paper.sqlite"
    await (await Journal.open(path)).close()
    ib, trades = await resting_orders(sim, ["ref-a", "ref-b"])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the writer lock
    out = io.StringIO()
    kill = asyncio.create_task(out_of_band_kill(settings_for(tmp_path, sim.port), "console frozen", by="tester",
                                                console=Console(file=out, soft_wrap=True)))
    try:
        await eventually(lambda: all(t.orderStatus.status == "Cancelled" for t in trades), within=5.0,
                         what="cancelled while the journal is still locked")
        assert not kill.done()  # the latch still waits for the lock
    finally:
        holder.rollback()
        holder.close()
    assert await kill == EXIT_OK
    printed = out.getvalue()
    assert "2 cancelled, 0 still working" in printed
    journal = await Journal.open(path)
    state = await journal.load_kill_state()
    await journal.close()
    assert state is not None  # latched once the lock was free
    assert state.get("engaged")
    ib.disconnect()


async def test_kill_when_the_journal_cannot_be_written_then_orders_still_cancelled_and_says_not_latched(
        sim: SimGateway, tmp_path: Path) -> None:
    """A journal that cannot be written raised out of the command before the cancel: said, and the cancel goes."""
    path = tmp_path / "journal-paper.sqlite"
    path.mkdir()  # not a file SQLite can open
    ib, trades = await resting_orders(sim, ["ref-a", "ref-b"])
    code, printed = await kill_printed(tmp_path, sim.port, journal_path=path)
    assert code == EXIT_NOT_LATCHED == 4
    await eventually(lambda: all(t.orderStatus.status == "Cancelled" for t in trades), what="cancelled")
    assert "kill switch NOT latched" in printed
    assert "2 cancelled, 0 still working" in printed
    ib.disconnect()


async def test_kill_when_the_running_engine_uses_another_modes_journal_then_says_so_and_exits_5(
        sim: SimGateway, tmp_path: Path) -> None:
    """``mode = "sim"`` configured, the engine started with --live: ``tui-trader kill`` (no mode flag) latched
    the sim journal, cancelled at the simulator ("0 cancelled") and exited 0 while the live engine traded on."""
    live = JournalLock.acquire(tmp_path / "journal-live.sqlite")  # the running engine's writer lock
    try:
        code, printed = await kill_printed(tmp_path, sim.port)
        held = JournalLock.acquire(tmp_path / "journal-paper.sqlite")  # no engine on the one it latched
        held.release()
    finally:
        live.release()
    assert code == EXIT_OTHER_ENGINE == 5
    assert f"{tmp_path / 'journal-live.sqlite'} (live) is in use" in printed
    assert "run tui-trader kill --live" in printed


async def test_kill_when_the_engine_runs_with_its_journal_then_no_word_of_another(
        sim: SimGateway, tmp_path: Path) -> None:
    mine = JournalLock.acquire(tmp_path / "journal-paper.sqlite")
    other = JournalLock.acquire(tmp_path / "journal-sim.sqlite")  # a second engine, another mode: not this one
    try:
        code, printed = await kill_printed(tmp_path, sim.port, "x")
    finally:
        mine.release()
        other.release()
    assert code == EXIT_OK
    assert "an engine runs with another journal" not in printed


async def test_kill_without_a_gateway_then_latched_says_nothing_was_cancelled_and_exits_3(tmp_path: Path) -> None:
    # It exited 0: a script could not tell "latched, nothing working" from "latched, the broker not reached".
    out = io.StringIO()
    code = await out_of_band_kill(settings_for(tmp_path, closed_port()), "no console [x] :X:", by="tester",
                                  connect_timeout_s=1, console=Console(file=out, soft_wrap=True))
    assert code == EXIT_NOT_REACHED == 3
    assert "not reachable" in out.getvalue()
    assert "by tester: no console [x] :X:" in out.getvalue()  # as typed: not markup, not an emoji code
    journal = await Journal.open(tmp_path / "journal-paper.sqlite")
    state = await journal.load_kill_state()
    await journal.close()
    assert state is not None
    assert state["engaged"] is True


async def test_kill_when_the_journal_did_not_exist_then_latched_and_says_no_engine_ran_with_it(
        tmp_path: Path) -> None:
    # A mistyped --journal (or the wrong mode) said only "kill switch latched", of a file no engine reads.
    out = io.StringIO()
    await out_of_band_kill(settings_for(tmp_path, closed_port()), "x", by="tester", cancel=False,
                           journal_path=tmp_path / "typo.sqlite", console=Console(file=out, soft_wrap=True))
    assert "no journal was there: this one is new, so no engine has run with it" in out.getvalue()
    out = io.StringIO()
    await out_of_band_kill(settings_for(tmp_path, closed_port()), "again", by="tester", cancel=False,
                           journal_path=tmp_path / "typo.sqlite", console=Console(file=out, soft_wrap=True))
    assert "kill switch latched" in out.getvalue()
    assert "no journal was there" not in out.getvalue()


async def test_kill_client_id_same_as_engine_then_latched_first_then_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, closed_port(), kill_switch={"kill_client_id": 17},
                            broker={"client_id": 17, "port": closed_port()})
    with pytest.raises(UsageError, match="must differ"):
        await out_of_band_kill(settings, "x", by="tester", console=Console(file=io.StringIO()))
    journal = await Journal.open(tmp_path / "journal-paper.sqlite")
    state = await journal.load_kill_state()
    actions = [(e.action, e.after) for e in await journal.events(["OperatorAction"]) if isinstance(e, OperatorAction)]
    await journal.close()
    assert state is not None
    assert state["engaged"] is True
    # The refusal is on the record as the global cancel not sent (the journal tells the whole story of a kill).
    assert [a for a, _ in actions] == ["kill", "global_cancel"]
    assert actions[1][1].startswith("not sent: the kill's client id")


class EngineStandIn:
    """Records what the watcher asked of the engine (the real engine is wired in test_engine_wiring)."""

    def __init__(self, engaged: bool = False) -> None:
        self.engaged = engaged
        self.kills: list[tuple[str, str]] = []

    def kill(self, reason: str, by: str) -> None:
        self.kills.append((reason, by))
        self.engaged = True


def oob(at: str, engaged: bool = True) -> dict[str, Any]:
    return {"engaged": engaged, "by": "cli", "reason": "r", "engaged_at": at, "out_of_band": True}


def test_watcher_fires_once_per_out_of_band_kill() -> None:
    engine = EngineStandIn()
    watcher = KillStateWatcher(_never, engine.kill, lambda: engine.engaged)
    assert watcher.consider(oob("t1"))
    assert not watcher.consider(oob("t1"))
    assert engine.kills == [("r", "cli")]


def test_watcher_stale_read_after_reset_then_does_not_reengage() -> None:
    engine = EngineStandIn()
    watcher = KillStateWatcher(_never, engine.kill, lambda: engine.engaged)
    watcher.consider(oob("t1"))
    engine.engaged = False  # operator reset; the journal still shows the old record for a moment
    assert not watcher.consider(oob("t1"))
    assert watcher.consider(oob("t2"))


def test_watcher_ignores_the_engines_own_records_and_released_state() -> None:
    engine = EngineStandIn()
    watcher = KillStateWatcher(_never, engine.kill, lambda: engine.engaged)
    assert not watcher.consider({"engaged": True, "engaged_at": "t0", "by": "operator"})
    assert not watcher.consider(oob("t1", engaged=False))
    assert not watcher.consider(None)
    assert engine.kills == []


async def test_watcher_polls_the_journal_written_by_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    engine_journal = await Journal.open(path)
    engine = EngineStandIn()
    watcher = KillStateWatcher(engine_journal.load_kill_state, engine.kill, lambda: engine.engaged)
    assert not await watcher.poll()
    from tui_trader.ops.kill import latch

    await latch(path, "cli", "from another process", datetime.now(UTC))
    assert await watcher.poll()
    await engine_journal.close()
    assert engine.kills == [("from another process", "cli")]


async def _never() -> dict[str, Any] | None:
    return None


async def test_kill_when_its_client_id_is_in_use_then_says_so_names_the_id_and_how_to_pick_another(
        sim: SimGateway, tmp_path: Path) -> None:
    """The gateway refused the kill's client id (326: another API client holds it): the kill said "gateway not
    reachable", and the operator went looking at a gateway that was up."""
    holder = ib_async.IB()
    await holder.connectAsync(sim.host, sim.port, clientId=55, timeout=3)  # the kill's id, taken
    try:
        code, printed = await kill_printed(tmp_path, sim.port)
    finally:
        holder.disconnect()
    printed = " ".join(printed.split())
    assert code == EXIT_CLIENT_ID_IN_USE == 6
    assert "not reachable" not in printed
    assert "refused the kill's client id 55: it is in use" in printed
    assert "--client-id" in printed
    assert "kill_switch.kill_client_id" in printed
    assert "Orders already at the broker were NOT cancelled" in printed
    journal = await Journal.open(tmp_path / "journal-paper.sqlite")
    actions = [(e.action, e.before) for e in await journal.events(["OperatorAction"])]  # type: ignore[attr-defined]
    await journal.close()
    assert actions == [("kill", ""), ("global_cancel", "client id 55 in use at the gateway")]


async def test_kill_with_client_id_flag_then_connects_with_that_id(sim: SimGateway, tmp_path: Path) -> None:
    holder = ib_async.IB()
    await holder.connectAsync(sim.host, sim.port, clientId=55, timeout=3)
    ib, trades = await resting_orders(sim, ["ref-a"])
    try:
        code, printed = await kill_printed(tmp_path, sim.port, client_id=56)
    finally:
        holder.disconnect()
        ib.disconnect()
    assert code == EXIT_OK
    assert "as client 56: 1 cancelled, 0 still working" in printed


def test_kill_client_id_flag_out_of_range_then_refused_before_anything() -> None:
    with pytest.raises(UsageError, match="--client-id must be an API client id"):
        run_kill(["--reason", "x", "--client-id", "-1"])


def test_kill_report_when_an_order_type_not_modelled_then_the_broker_s_words_not_other() -> None:
    # Arrange: the gateway cancelled a TWS MIT order and an engine's stop.
    mit = BrokerOrderReport("", 7, 70, 0, "AAPL", Side.SELL, 5, OrderType.OTHER, None, limit_price=None,
                            stop_price=180.5, raw_order_type="MIT")
    stop = BrokerOrderReport("tt-1", 8, 80, 1, "AAPL", Side.SELL, 5, OrderType.STP, None, stop_price=179.0,
                             raw_order_type="STP")
    out = io.StringIO()

    # Act
    print_report(Console(file=out, width=200), GatewayTarget("127.0.0.1", 7800, 99), CancelReport(True, (mit, stop)))

    # Assert
    rows = [line.split("│")[1:-1] for line in out.getvalue().splitlines() if "AAPL" in line]
    assert [[cell.strip() for cell in row][5:] for row in rows] == [["5", "MIT", "", "180.5"], ["5", "STP", "", "179"]]
