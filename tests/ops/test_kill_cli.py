"""``tui-trader kill`` as the operator runs it: with a configuration that does not load, against the simulator the
``--sim`` engine actually runs, what it prints and the files it leaves in the state directory."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

import ib_async
import pytest
from ib_async import LimitOrder
from rich.console import Console

from tui_trader.cli import main
from tui_trader.config import load_settings
from tui_trader.domain import AlertLevel
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.factory import create_engine
from tui_trader.errors import ConfigError
from tui_trader.ops.kill import CLIENT_ID_RETRIES, EXIT_OK, EXIT_OTHER_ENGINE, out_of_band_kill
from tui_trader.ops.kill_cli import ib_async_logged_in
from tui_trader.ops.logs import BACKUPS, MAX_BYTES
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal
from tui_trader.store.lock import JournalLock

from .conftest import eventually
from .servers import closed_port

TRADER_CLIENT = 7
BROKEN_KEY = "[risk]\nmax_order_quantityy = 5\n"
"""A typo, as made while editing the configuration for the next run."""

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
async def sim() -> AsyncIterator[SimGateway]:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        yield gw


async def working_order(host: str, port: int, ref: str, gw: SimGateway | None = None) -> ib_async.IB:
    """A real ib_async client with one limit buy far below the market, working at the gateway on ``port``."""
    ib = ib_async.IB()
    await ib.connectAsync(host, port, clientId=TRADER_CLIENT, timeout=3, raiseSyncErrors=True)
    (aapl,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
    if gw is not None:
        gw.control.set_quote("AAPL", 100.00, 100.02)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, 50.0, orderRef=ref))
    await eventually(lambda: trade.orderStatus.status == "Submitted", what=f"{ref} working")
    return ib


def working_refs(gw: SimGateway) -> list[str]:
    return [o.order_ref for o in gw.orders() if o.working]


async def kill_cli(*argv: str) -> int:
    """``tui-trader kill`` through the real entry point (in a thread: the simulator runs on this loop)."""
    return await asyncio.to_thread(main, ["kill", "--reason", "console frozen", *argv])


async def latched(journal: Path) -> bool:
    opened = await Journal.open(journal)
    try:
        state = await opened.load_kill_state()
    finally:
        await opened.close()
    return bool(state and state.get("engaged"))


async def cancel_outcomes(journal: Path) -> list[str]:
    """What became of each global cancel, as the journal's OperatorAction "global_cancel" says (its ``after``)."""
    opened = await Journal.open(journal)
    try:
        actions = await opened.events(["OperatorAction"])
    finally:
        await opened.close()
    return [a.after for a in actions if a.action == "global_cancel"]  # type: ignore[attr-defined]


def config_message(path: Path) -> str:
    """What check-config says of the configuration at ``path``."""
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    return refused.value.message


def test_kill_help_then_its_exit_statuses_say_the_ids_it_tried_and_the_refused_account(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Exit 6 said "the gateway refused the kill's client id": a kill that chose its ids itself tries several, each
    # refused before it gives up. Exit 8 (an account the kill must not touch) was not in the list at all.
    monkeypatch.setenv("COLUMNS", "1000")  # one line a paragraph: the phrases asserted are not broken across lines
    with pytest.raises(SystemExit) as exited:
        main(["kill", "--help"])

    said = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    assert (f"6 the gateway refused the kill's client id as in use (each of the {1 + CLIENT_ID_RETRIES} it tried, "
            "when it chose them itself: see --client-id), so nothing was cancelled") in said
    assert (f"the kill chooses the next free ids itself, trying up to {1 + CLIENT_ID_RETRIES} while the gateway "
            "refuses each as in use") in said
    assert ("8 the gateway is logged into an account the kill must not touch (--paper on a live account, or not the "
            "configured one), so nothing was sent there.") in said


# -- a configuration that does not load ------------------------------------------------------------------------


async def test_kill_when_the_config_does_not_validate_then_latches_the_journal_of_its_state_dir_and_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It refused to run ("Configuration error", exit 2): a typo made while an engine runs blocked the kill switch.
    state = tmp_path / "state"
    config = tmp_path / "tui-trader.toml"
    config.write_text(f'state_dir = "{state}"\n{BROKEN_KEY}')

    code = await kill_cli("--config", str(config), "--sim", "--no-cancel")

    out = capsys.readouterr()
    assert code == EXIT_OK
    assert await latched(state / "journal-sim.sqlite")
    assert all(line in out.err for line in config_message(config).splitlines())  # as check-config says it
    said = " ".join(out.out.split())
    assert "the configuration did not load" in said
    assert f"kill switch latched in {state / 'journal-sim.sqlite'}" in said


async def test_kill_when_the_config_cannot_be_parsed_then_latches_the_default_state_dirs_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tui-trader.toml"
    config.write_text('state_dir = "/somewhere"\n[broker\nport = 4002\n')  # not TOML: nothing of it is read

    code = await kill_cli("--config", str(config), "--no-cancel")

    out = capsys.readouterr()
    assert code == EXIT_OK
    assert "not valid TOML" in out.err
    assert await latched(tmp_path / "xdg-state" / "tui-trader" / "journal-sim.sqlite")


async def test_kill_when_the_config_does_not_validate_then_no_global_cancel_at_a_guessed_gateway_until_given(
        sim: SimGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The configuration names the gateway, but it did not load: the port may be the very line being edited.
    state = tmp_path / "state"
    config = tmp_path / "tui-trader.toml"
    config.write_text(f'mode = "paper"\nstate_dir = "{state}"\n[broker]\nport = {sim.port}\n{BROKEN_KEY}')
    ib = await working_order(sim.host, sim.port, "ref-a", sim)
    try:
        code = await kill_cli("--config", str(config), "--connect-timeout", "2")
        skipped = " ".join(capsys.readouterr().out.split())
        assert code == 7  # EXIT_GATEWAY_UNKNOWN
        assert working_refs(sim) == ["ref-a"]  # nothing sent
        assert await latched(state / "journal-paper.sqlite")
        assert "global cancel NOT sent" in skipped
        assert "--host and --port" in skipped
        (outcome,) = await cancel_outcomes(state / "journal-paper.sqlite")  # the journal says so too
        assert outcome.startswith("not sent: the configuration did not load, so where the gateway is is not known")

        code = await kill_cli("--config", str(config), "--host", sim.host, "--port", str(sim.port))
        sent = " ".join(capsys.readouterr().out.split())
    finally:
        ib.disconnect()
    assert code == EXIT_OK
    assert working_refs(sim) == []
    assert f"global cancel sent to {sim.host}:{sim.port}" in sent
    assert (await cancel_outcomes(state / "journal-paper.sqlite"))[1:] == ["0 still working"]


# -- the simulator the --sim engine runs --------------------------------------------------------------------------


async def test_kill_sim_when_the_configured_port_was_taken_then_it_cancels_at_the_engines_simulator_only(
        sim: SimGateway, tmp_path: Path) -> None:
    # Seen: the kill cancelled the orders of another state dir's engine listening on the configured sim.port,
    # exited 0, and this run's engine (its simulator on the fallback port) was not reached.
    settings = load_settings(None, {"state_dir": str(tmp_path / "state"), "confirm": False, "strategies": [],
                                    "sim": {"port": sim.port}, "kill_switch": {"kill_client_id": 55}})
    theirs = await working_order(sim.host, sim.port, "theirs", sim)  # another run's simulator holds the port
    engine = create_engine(settings)
    events = engine.subscribe("test", lossless=True)
    await engine.start()
    try:
        port = engine.connection.port
        assert port != sim.port
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
        moved = [a for a in alerts if a.kind == "sim_port_taken"]
        assert [a.level for a in moved] == [AlertLevel.INFO]
        assert f"port {sim.port} is taken" in moved[0].text
        assert f"listens on {port}" in moved[0].text
        mine = await working_order(settings.sim.host, port, "mine")
        out = io.StringIO()
        code = await out_of_band_kill(settings, "console frozen", by="tester", console=Console(file=out, width=300))
        mine.disconnect()
    finally:
        await engine.stop()
        theirs.disconnect()
    assert code == EXIT_OK
    assert f"global cancel sent to {settings.sim.host}:{port} as client 55: 1 cancelled" in out.getvalue()
    assert working_refs(sim) == ["theirs"]
    assert list((tmp_path / "state").glob("*.gateway")) == []  # said where it was only while it ran


async def test_kill_sim_when_no_engine_runs_with_the_journal_then_no_cancel_at_the_configured_port(
        sim: SimGateway, tmp_path: Path) -> None:
    # The simulator is embedded in the engine: none runs for this journal, and the one on the configured port is
    # another run's. A file left by an engine that died does not count.
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal-sim.sqlite.gateway").write_text(json.dumps({"host": sim.host, "port": sim.port, "pid": 1}))
    settings = load_settings(None, {"state_dir": str(state), "sim": {"port": sim.port},
                                    "kill_switch": {"kill_client_id": 55}})
    theirs = await working_order(sim.host, sim.port, "theirs", sim)
    out = io.StringIO()
    try:
        code = await out_of_band_kill(settings, "x", by="tester", console=Console(file=out, width=300))
    finally:
        theirs.disconnect()
    assert code == EXIT_OK
    assert working_refs(sim) == ["theirs"]
    assert "global cancel NOT sent: no engine runs with this journal, so neither does its simulator" in \
        " ".join(out.getvalue().split())
    (outcome,) = await cancel_outcomes(settings.journal_path)
    assert outcome.startswith("not sent: no engine runs with this journal, so neither does its simulator")


async def test_kill_sim_when_the_engine_has_not_said_where_its_simulator_listens_then_not_sent_and_exits_7(
        tmp_path: Path) -> None:
    settings = load_settings(None, {"state_dir": str(tmp_path), "kill_switch": {"kill_client_id": 55}})
    starting = JournalLock.acquire(settings.journal_path)  # an engine that has not started its simulator yet
    out = io.StringIO()
    try:
        code = await out_of_band_kill(settings, "x", by="tester", console=Console(file=out, width=300))
    finally:
        starting.release()
    assert code == 7  # EXIT_GATEWAY_UNKNOWN
    assert "has not said where its simulator listens" in out.getvalue()
    (outcome,) = await cancel_outcomes(settings.journal_path)  # the journal tells the whole story of the kill
    assert outcome.startswith(f"not sent: the engine running with {settings.journal_path} (process ")
    assert "has not said where its simulator listens" in outcome


# -- what it prints and leaves ---------------------------------------------------------------------------------


def test_kill_cli_when_the_gateway_is_down_then_its_own_words_on_the_terminal_and_ib_async_s_in_the_log(
        tmp_path: Path) -> None:
    # ib_async's "API connection failed: ConnectionRefusedError(...)" and "Make sure API port on TWS/IBG is open"
    # followed the kill's own clear message on stderr.
    state = tmp_path / "state"
    config = tmp_path / "kill.toml"
    config.write_text(f'mode = "paper"\nstate_dir = "{state}"\n[broker]\nport = {closed_port()}\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}

    run = subprocess.run([sys.executable, "-m", "tui_trader.cli", "kill", "--config", str(config), "--reason", "x",
                          "--connect-timeout", "1"], capture_output=True, text=True, env=env, timeout=60,
                         check=False, stdin=subprocess.DEVNULL)

    assert run.returncode == 3, run.stdout + run.stderr
    assert "not reachable" in run.stdout
    assert run.stderr == ""
    assert "API connection failed" in (state / "logs" / "kill.log").read_text()


def test_kill_log_when_ib_async_says_much_then_it_rotates_as_every_log_and_stays_the_owners_only(
        tmp_path: Path) -> None:
    # It was a plain file handler: the kill's log grew without end, where every other log rotates.
    state = tmp_path / "state"
    with ib_async_logged_in(state):
        (handler,) = [h for h in logging.getLogger("ib_async").handlers if isinstance(h, logging.FileHandler)]
        assert not (state / "logs").exists()  # nothing said yet, nothing left
        assert isinstance(handler, RotatingFileHandler)
        assert (handler.maxBytes, handler.backupCount) == (MAX_BYTES, BACKUPS)
        handler.maxBytes = 300
        for n in range(20):
            logging.getLogger("ib_async.client").warning("API connection failed: ConnectionRefusedError(%d)", n)

    logs = state / "logs"
    modes = {p.name: p.stat().st_mode & 0o777 for p in logs.iterdir()}
    assert {"kill.log", "kill.log.1", "kill.log.5"} <= set(modes)
    assert set(modes.values()) == {0o600}
    assert logs.stat().st_mode & 0o777 == 0o700


def test_kill_log_when_the_global_cancel_cancels_then_ib_async_s_202_is_no_error(tmp_path: Path) -> None:
    # Every order the kill cancelled read "ERROR ib_async.wrapper: Error 202, ... Order Canceled" in kill.log.
    state = tmp_path / "state"
    with ib_async_logged_in(state):
        logging.getLogger("ib_async.wrapper").error("Error 202, reqId 7: Order Canceled - reason:")
        logging.getLogger("ib_async.wrapper").error("Error 201, reqId 8: Order rejected - reason:margin")

    lines = (state / "logs" / "kill.log").read_text().splitlines()
    assert [line.split()[2] for line in lines] == ["INFO", "ERROR"]


async def test_kill_when_the_state_dir_is_new_then_checking_the_other_modes_leaves_no_lock_files(
        tmp_path: Path) -> None:
    settings = load_settings(None, {"mode": "paper", "state_dir": str(tmp_path / "state")})

    code = await out_of_band_kill(settings, "x", by="tester", cancel=False, console=Console(file=io.StringIO()))

    assert code == EXIT_OK
    assert sorted(p.name for p in (tmp_path / "state").iterdir() if p.name.endswith(".lock")) == []


async def test_kill_with_no_cancel_then_the_journal_and_the_report_say_the_global_cancel_was_not_sent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The journal said "kill" and nothing of the cancel: the printed line was the only record of one not sent.
    settings = load_settings(None, {"mode": "paper", "state_dir": str(tmp_path / "state")})

    code = await out_of_band_kill(settings, "x", by="tester", cancel=False, console=Console(file=io.StringIO()))

    assert code == EXIT_OK
    assert await cancel_outcomes(settings.journal_path) == ["not sent: only the latch was asked for"]
    assert await asyncio.to_thread(main, ["report", "--journal", str(settings.journal_path), "--section",
                                          "operator_actions", "--format", "json"]) == 0
    actions = json.loads(capsys.readouterr().out)["operator_actions"]
    assert [(a["who"], a["action"], a["after"]) for a in actions] == [
        ("tester", "kill", "HALTED"), ("tester", "global_cancel", "not sent: only the latch was asked for")]


async def test_kill_when_an_engine_holds_another_modes_journal_then_still_found_without_creating_lock_files(
        tmp_path: Path) -> None:
    settings = load_settings(None, {"mode": "paper", "state_dir": str(tmp_path)})
    live = JournalLock.acquire(tmp_path / "journal-live.sqlite")
    try:
        code = await out_of_band_kill(settings, "x", by="tester", cancel=False, console=Console(file=io.StringIO()))
    finally:
        live.release()
    assert code == EXIT_OTHER_ENGINE
    assert not (tmp_path / "journal-sim.sqlite.lock").exists()
