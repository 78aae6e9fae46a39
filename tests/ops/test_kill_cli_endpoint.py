"""``tui-trader kill`` finds the running engine's gateway in every mode (``<journal>.gateway``), never another mode's;
``--sim --host`` without ``--port``; a configuration that does not load read from the environment as the settings
read it, and the same gateway and client id chosen with it or without it."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import ib_async
import pytest
from rich.console import Console

from tui_trader.config import Settings, load_settings
from tui_trader.config.salvage import Salvaged, salvage
from tui_trader.domain import Mode
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import create_engine
from tui_trader.errors import UsageError
from tui_trader.ops import gateway_endpoint
from tui_trader.ops.gateway_endpoint import GatewayEndpoint, endpoint_path
from tui_trader.ops.kill import (
    EXIT_CLIENT_ID_IN_USE,
    EXIT_GATEWAY_UNKNOWN,
    EXIT_OK,
    GatewayTarget,
    KillSetup,
    NotSent,
    out_of_band_kill,
    setup_of,
    target_for,
)
from tui_trader.ops.kill_cli import setup_without_settings
from tui_trader.ops.modes import settings_for
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.store.journal import Journal

from .conftest import eventually
from .test_kill_cli import BROKEN_KEY, cancel_outcomes, kill_cli, latched, working_order, working_refs

EXIT_USAGE = 2

pytestmark = pytest.mark.usefixtures("isolated")


@asynccontextmanager
async def gateway() -> AsyncIterator[SimGateway]:
    """A simulator standing in for an IB paper gateway (its account is DUSIM...)."""
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        yield gw


def settings_of(tmp_path: Path, mode: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {"mode": mode, "state_dir": str(tmp_path / "state"), "confirm": False, "strategies": [],
                            "kill_switch": {"kill_client_id": 55}}
    return load_settings(None, {**base, **changes})


def paper_at(tmp_path: Path, port: int, **changes: Any) -> Settings:
    """``--paper`` with the gateway at ``port`` (reconnecting at once); ``broker`` changes more of its section."""
    broker = {"port": port, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, **changes.pop("broker", {})}
    return settings_of(tmp_path, "paper", broker=broker, **changes)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Engine]:
    engine = create_engine(settings)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def kill_printed(settings: Settings) -> tuple[int, str]:
    out = io.StringIO()
    code = await out_of_band_kill(settings, "console frozen", by="tester", console=Console(file=out, width=400))
    return code, " ".join(out.getvalue().split())


# -- --paper / --live: the gateway the engine is connected to --------------------------------------------------------


async def test_kill_paper_when_the_config_was_edited_since_the_engine_started_then_cancels_at_the_engines_gateway(
        tmp_path: Path) -> None:
    # It went to the configured port: the gateway named for the next run, while the engine's orders worked on.
    async with gateway() as engines, gateway() as configured:
        settings = paper_at(tmp_path, engines.port)
        file = endpoint_path(settings.journal_path)
        async with running(settings):
            said = json.loads(file.read_text())
            mode = stat.S_IMODE(file.stat().st_mode)
            mine = await working_order(engines.host, engines.port, "mine", engines)
            theirs = await working_order(configured.host, configured.port, "theirs", configured)
            try:
                code, out = await kill_printed(paper_at(tmp_path, configured.port))  # edited for the next run
            finally:
                mine.disconnect()
                theirs.disconnect()
        assert said == {"mode": "paper", "host": settings.broker.host, "port": engines.port,
                        "client_id": settings.broker.client_id, "pid": os.getpid()}
        assert mode == 0o600
        assert code == EXIT_OK
        assert f"said it is connected to {settings.broker.host}:{engines.port}" in out
        assert f"global cancel sent to {settings.broker.host}:{engines.port} as client 55: 1 cancelled" in out
        assert working_refs(engines) == []
        assert working_refs(configured) == ["theirs"]
        assert not file.exists()  # said only while it ran


async def test_kill_paper_when_the_engine_reconnects_to_another_gateway_then_the_file_and_the_kill_follow_it(
        tmp_path: Path) -> None:
    async with gateway() as first, gateway() as second:
        settings = paper_at(tmp_path, first.port)
        file = endpoint_path(settings.journal_path)
        async with running(settings) as engine:
            assert json.loads(file.read_text())["port"] == first.port
            engine.broker.port = second.port  # type: ignore[attr-defined]  # the next connect goes there
            first.control.disconnect()
            await eventually(lambda: json.loads(file.read_text())["port"] == second.port, what="said again")
            assert stat.S_IMODE(file.stat().st_mode) == 0o600
            mine = await working_order(second.host, second.port, "mine", second)
            try:
                code, out = await kill_printed(settings)
            finally:
                mine.disconnect()
        assert code == EXIT_OK
        assert f"global cancel sent to {settings.broker.host}:{second.port} as client 55: 1 cancelled" in out
        assert working_refs(second) == []


async def test_kill_when_the_config_does_not_load_and_a_paper_engine_runs_then_cancels_at_its_gateway(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It said "global cancel NOT sent" (exit 7) unless given --host and --port: the engine knew where it was.
    state = tmp_path / "state"
    config = tmp_path / "tui-trader.toml"
    async with gateway() as engines:
        settings = paper_at(tmp_path, engines.port)
        async with running(settings):
            config.write_text(f'mode = "paper"\nstate_dir = "{state}"\n{BROKEN_KEY}')
            mine = await working_order(engines.host, engines.port, "mine", engines)
            try:
                code = await kill_cli("--config", str(config), "--connect-timeout", "2")
            finally:
                mine.disconnect()
        out = " ".join(capsys.readouterr().out.split())
        assert code == EXIT_OK, out
        assert "the configuration did not load" in out
        assert f"global cancel sent to {settings.broker.host}:{engines.port}" in out
        assert working_refs(engines) == []
        assert (await cancel_outcomes(state / "journal-paper.sqlite"))[-1] == "0 still working"


# -- the running engine's client id (started with --client-id: not the configured one) --------------------------------


async def test_kill_when_the_engine_was_started_with_the_kills_client_id_then_cancels_as_another_and_says_so(
        tmp_path: Path) -> None:
    # The kill knew only broker.client_id (17): it connected with 55, the id `tui-trader --client-id 55` gave the
    # running engine, and the gateway refused it as in use (exit 6, nothing cancelled).
    async with gateway() as engines, running(paper_at(tmp_path, engines.port, broker={"client_id": 55})) as engine:
        mine = await working_order(engines.host, engines.port, "mine", engines)
        try:
            code, out = await kill_printed(paper_at(tmp_path, engines.port))  # the configuration: 17 and 55
        finally:
            mine.disconnect()
        still_connected = engine.broker.is_connected
    assert code == EXIT_OK, out
    assert (f"(process {os.getpid()}) connects with client id 55, the kill's own (kill_switch.kill_client_id): the "
            "global cancel goes as client 56 instead") in out
    assert f"global cancel sent to 127.0.0.1:{engines.port} as client 56: 1 cancelled" in out
    assert working_refs(engines) == []
    assert still_connected


@asynccontextmanager
async def holding(gw: SimGateway, *client_ids: int) -> AsyncIterator[None]:
    """Real ib_async clients connected to ``gw`` with ``client_ids``: the gateway refuses those ids as in use (326)."""
    async with AsyncExitStack() as clients:
        for client_id in client_ids:
            ib = ib_async.IB()
            await ib.connectAsync(gw.host, gw.port, clientId=client_id, timeout=3)
            clients.callback(ib.disconnect)
        yield


async def test_kill_when_the_id_it_took_instead_of_the_engines_is_in_use_then_goes_as_the_next_free_one_and_says_so(
        tmp_path: Path) -> None:
    # The id taken instead of the engine's (56) was another API client's: the gateway refused it (326), the kill said
    # so and cancelled nothing (exit 6), while an id after it was free.
    async with gateway() as engines, running(paper_at(tmp_path, engines.port, broker={"client_id": 55})) as engine:
        mine = await working_order(engines.host, engines.port, "mine", engines)
        try:
            async with holding(engines, 56, 57):
                code, out = await kill_printed(paper_at(tmp_path, engines.port))
        finally:
            mine.disconnect()
        still_connected = engine.broker.is_connected
    assert code == EXIT_OK, out
    assert "the global cancel goes as client 56 instead" in out
    assert ("client id 56 is in use at the gateway too: the global cancel goes as client 57 instead client id 57 is "
            "in use at the gateway too: the global cancel goes as client 58 instead") in out
    assert f"global cancel sent to 127.0.0.1:{engines.port} as client 58: 1 cancelled" in out
    assert working_refs(engines) == []
    assert still_connected


async def test_kill_when_every_id_it_may_take_instead_of_the_engines_is_in_use_then_fails_naming_them(
        tmp_path: Path) -> None:
    # 57 is free, but the configuration's engine id (broker.client_id): never taken, not even as the last resort.
    async with gateway() as engines, running(paper_at(tmp_path, engines.port, broker={"client_id": 55})) as engine:
        mine = await working_order(engines.host, engines.port, "mine", engines)
        try:
            async with holding(engines, 56, *range(58, 63)):
                code, out = await kill_printed(paper_at(tmp_path, engines.port, broker={"client_id": 57}))
        finally:
            mine.disconnect()
        still_connected = engine.broker.is_connected
    assert code == EXIT_CLIENT_ID_IN_USE, out
    assert out.count("is in use at the gateway too") == 5  # CLIENT_ID_RETRIES
    assert ("refused the kill's client ids 56, 58, 59, 60, 61, 62: each is in use (another API client connected with "
            "it, or a session the gateway has not dropped yet). Run the kill again with another id: tui-trader kill "
            "--client-id N") in out
    assert "Orders already at the broker were NOT cancelled" in out
    assert working_refs(engines) == ["mine"]
    assert still_connected
    journal = await Journal.open(tmp_path / "state" / "journal-paper.sqlite")
    actions = [(e.action, e.before) for e in await journal.events(["OperatorAction"])]  # type: ignore[attr-defined]
    await journal.close()
    assert actions == [("kill", ""), ("global_cancel", "client ids 56, 58, 59, 60, 61, 62 in use at the gateway")]


async def test_kill_with_the_client_id_flag_naming_the_running_engines_id_then_refused_after_the_latch(
        tmp_path: Path) -> None:
    async with gateway() as engines, running(paper_at(tmp_path, engines.port, broker={"client_id": 23})) as engine:
        mine = await working_order(engines.host, engines.port, "mine", engines)
        try:
            with pytest.raises(UsageError) as refused:
                await out_of_band_kill(paper_at(tmp_path, engines.port), "console frozen", by="tester",
                                       client_id=23, console=Console(file=io.StringIO()))
        finally:
            mine.disconnect()
        still_connected = engine.broker.is_connected
    assert (f"(--client-id: 23) must differ from the engine's: the engine running with this journal (process "
            f"{os.getpid()}) connects with client id 23") in refused.value.message
    assert still_connected
    assert working_refs(engines) == ["mine"]
    journal = tmp_path / "state" / "journal-paper.sqlite"
    assert await latched(journal)
    (outcome,) = await cancel_outcomes(journal)
    assert outcome.startswith("not sent: the kill's client id (--client-id: 23)")


def test_gateway_file_without_a_client_id_then_still_read_and_one_written_now_then_read_with_it(
        tmp_path: Path) -> None:
    # A file an engine of the version before wrote (mode, host, port, pid): the kill still finds the gateway in it.
    journal = tmp_path / "journal-paper.sqlite"
    endpoint_path(journal).write_text(json.dumps({"mode": "paper", "host": "127.0.0.1", "port": 4002, "pid": 1}))
    assert gateway_endpoint.read(endpoint_path(journal)) == GatewayEndpoint("127.0.0.1", 4002, 1, Mode.PAPER)
    gateway_endpoint.publish(journal, Mode.PAPER, "127.0.0.1", 4002, 31)
    assert gateway_endpoint.read(endpoint_path(journal)) == GatewayEndpoint("127.0.0.1", 4002, os.getpid(),
                                                                            Mode.PAPER, 31)


# -- never another mode's gateway ---------------------------------------------------------------------------------


async def test_kill_paper_when_a_sim_engine_runs_with_the_shared_journal_then_not_at_its_simulator_and_says_so(
        tmp_path: Path) -> None:
    shared = str(tmp_path / "journal.sqlite")  # journal.path: one file for every mode
    async with gateway() as paper:
        sim_settings = settings_of(tmp_path, "sim", journal={"path": shared}, sim={"port": 0})
        async with running(sim_settings) as engine:
            simulator = engine.connection.port
            mine = await working_order(sim_settings.sim.host, simulator, "sim-order")
            theirs = await working_order(paper.host, paper.port, "paper-order", paper)
            try:
                code, out = await kill_printed(paper_at(tmp_path, paper.port, journal={"path": shared}))
                assert working_refs(paper) == []  # the paper kill cancels at the paper gateway, as configured
                open_at_sim = [t.order.orderRef for t in mine.openTrades()]
            finally:
                mine.disconnect()
                theirs.disconnect()
    assert code == EXIT_OK
    assert f"is a --sim engine, connected to {sim_settings.sim.host}:{simulator}" in out
    assert "a --paper kill does not cancel there (run tui-trader kill --sim for its orders)" in out
    assert open_at_sim == ["sim-order"]


async def test_kill_sim_when_a_paper_engine_runs_with_the_shared_journal_then_nothing_sent_and_exits_7(
        tmp_path: Path) -> None:
    shared = str(tmp_path / "journal.sqlite")
    async with gateway() as paper:
        async with running(paper_at(tmp_path, paper.port, journal={"path": shared})):
            mine = await working_order(paper.host, paper.port, "paper-order", paper)
            try:
                code, out = await kill_printed(settings_of(tmp_path, "sim", journal={"path": shared}))
            finally:
                mine.disconnect()
        assert working_refs(paper) == ["paper-order"]
    assert code == EXIT_GATEWAY_UNKNOWN
    assert "global cancel NOT sent" in out
    assert f"is a --paper engine, connected to 127.0.0.1:{paper.port}; a --sim kill does not cancel there" in out
    (outcome,) = await cancel_outcomes(Path(shared))
    assert "is a --paper engine" in outcome


# -- --sim --host without --port ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "config_loads"), [("--sim", True), ("--sim", False), ("--paper", True)])
async def test_kill_with_host_but_no_port_then_refused_before_anything_is_done(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, config_loads: bool) -> None:
    # --sim: --host was dropped without a word, the cancel went to the simulator on the host the engine said.
    # --paper: --host went with the configured port, a port guessed for another host.
    state = tmp_path / "state"
    config = tmp_path / "tui-trader.toml"
    config.write_text(f'state_dir = "{state}"\n' + ("" if config_loads else BROKEN_KEY))

    code = await kill_cli("--config", str(config), mode, "--host", "10.1.2.3")

    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_USAGE
    assert "--host without --port" in err
    assert not [p.name for p in state.glob("journal-*.sqlite")]  # nothing latched: run it again as meant


# -- a configuration that does not load: the environment as the settings read it ------------------------------------


async def test_kill_when_the_config_does_not_load_then_the_journal_table_in_the_environment_names_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # TUI_TRADER_JOURNAL='{"path": ...}' is how the settings take a table from the environment: the kill latched
    # the state directory's journal, which no engine used.
    journal = tmp_path / "elsewhere" / "trading.sqlite"
    monkeypatch.setenv("TUI_TRADER_JOURNAL", json.dumps({"path": str(journal)}))
    config = tmp_path / "tui-trader.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n{BROKEN_KEY}')

    code = await kill_cli("--config", str(config), "--no-cancel")

    assert code == EXIT_OK
    assert await latched(journal)
    assert not (tmp_path / "state" / "journal-sim.sqlite").exists()


def test_salvage_reads_the_environment_as_the_settings_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tui-trader.toml"
    config.write_text(f'[journal]\npath = "{tmp_path / "file.sqlite"}"\n{BROKEN_KEY}')
    monkeypatch.setenv("TUI_TRADER_JOURNAL", json.dumps({"path": str(tmp_path / "json.sqlite"), "batch_size": 5}))
    monkeypatch.setenv("tui_trader_state_dir", str(tmp_path / "lower"))  # any case, as the settings take it
    monkeypatch.setenv("TUI_TRADER_MODE", "live")
    assert salvage(config) == Salvaged(Mode.LIVE, tmp_path / "lower", tmp_path / "json.sqlite")

    monkeypatch.setenv("TUI_TRADER_JOURNAL__PATH", str(tmp_path / "nested.sqlite"))  # the nested variable wins
    assert salvage(config).journal == tmp_path / "nested.sqlite"

    monkeypatch.delenv("TUI_TRADER_JOURNAL__PATH")
    monkeypatch.setenv("TUI_TRADER_JOURNAL", "{not json")  # does not parse: the file's value counts
    assert salvage(config).journal == tmp_path / "file.sqlite"


def test_salvage_reads_the_client_ids_each_only_when_valid_on_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tui-trader.toml"
    config.write_text(f"[broker]\nclient_id = 0\n[kill_switch]\nkill_client_id = 31\n{BROKEN_KEY}")
    assert (salvage(config).client_id, salvage(config).kill_client_id) == (None, 31)  # 0 is TWS's own: invalid

    monkeypatch.setenv("TUI_TRADER_BROKER__CLIENT_ID", "23")  # the environment before the file
    assert salvage(config).client_id == 23


# -- one choice of gateway and client id, whether the configuration loads or not --------------------------------------


@pytest.mark.parametrize(("client_id", "broker", "flags", "refusal"), [
    (999, "[broker]\nclient_id = 999\n", (),
     "(kill_switch.kill_client_id, the default, as the configuration did not load: 999) must differ from the "
     "engine's (broker.client_id, as the configuration that did not load has it: 999)"),
    (17, "", ("--client-id", "17"),
     "(--client-id: 17) must differ from the engine's (broker.client_id, the default, as the configuration did not "
     "load: 17)"),
], ids=["the-configured-id", "the-flag"])
async def test_kill_when_the_config_does_not_load_and_the_kill_would_connect_with_the_engines_client_id_then_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], client_id: int, broker: str, flags: tuple[str, ...],
        refusal: str) -> None:
    # Without the configuration the refusal was dropped: the kill connected with the engine's own id (the
    # configuration's, as far as it reads, or the default), and the gateway refused it as in use (exit 6), or, with
    # the engine between two connections, the kill took the id and the engine's reconnect was refused.
    state = tmp_path / "state"
    config = tmp_path / "tui-trader.toml"
    async with gateway() as engines:
        settings = settings_of(tmp_path, "paper", broker={"port": engines.port, "client_id": client_id})
        async with running(settings) as engine:
            config.write_text(f'mode = "paper"\nstate_dir = "{state}"\n{broker}{BROKEN_KEY}')
            mine = await working_order(engines.host, engines.port, "mine", engines)
            try:
                code = await kill_cli("--config", str(config), "--connect-timeout", "2", *flags)
            finally:
                mine.disconnect()
            still_connected = engine.broker.is_connected
            latched_first = await latched(state / "journal-paper.sqlite")  # as with the configuration
        err = " ".join(capsys.readouterr().err.split())
        assert code == EXIT_USAGE, err
        assert f"the kill's client id {refusal}: the kill must not take over the engine's session" in err
        assert "--client-id N" in err
        assert still_connected
        assert working_refs(engines) == ["mine"]
        assert latched_first


async def test_kill_with_or_without_the_config_loading_then_the_same_gateway_and_client_id_for_the_same_inputs(
        tmp_path: Path) -> None:
    # Two copies of the choice disagreed: the one for a configuration that did not load let the kill connect with
    # the engine's client id.
    state = tmp_path / "state"
    config = tmp_path / "tui-trader.toml"
    text = f'mode = "paper"\nstate_dir = "{state}"\n[broker]\nport = {{port}}\n[kill_switch]\nkill_client_id = 55\n'
    async with gateway() as engines, gateway() as other, running(paper_at(tmp_path, engines.port)):
        config.write_text(text.format(port=other.port))  # edited for the next run
        loaded = {mode: setup_of(settings_for(config, mode)) for mode in ("paper", "sim")}
        config.write_text(text.format(port=other.port) + BROKEN_KEY)
        salvaged = {mode: setup_without_settings(Mode(mode), salvage(config)) for mode in ("paper", "sim")}

        def both(mode: str, **flags: Any) -> tuple[object, object]:
            journal = state / f"journal-{mode}.sqlite"
            return choice(loaded[mode], journal, **flags), choice(salvaged[mode], journal, **flags)

        engines_gateway = ("127.0.0.1", engines.port, 55)
        assert both("paper") == (engines_gateway, engines_gateway)
        assert both("paper", client_id=56) == (("127.0.0.1", engines.port, 56),) * 2
        assert both("paper", host="127.0.0.1", port=other.port) == (("127.0.0.1", other.port, 55),) * 2
        assert both("paper", client_id=17) == ("refused: must differ from the engine's",) * 2
        assert both("sim") == ("not sent, exit 0",) * 2  # no --sim engine runs: neither does its simulator
    # The one difference: with no engine of the mode to say where, only the configuration names a gateway.
    assert choice(loaded["paper"], state / "journal-paper.sqlite") == ("127.0.0.1", other.port, 55)
    assert choice(salvaged["paper"], state / "journal-paper.sqlite") == f"not sent, exit {EXIT_GATEWAY_UNKNOWN}"


def choice(setup: KillSetup, journal: Path, client_id: int | None = None, **flags: Any) -> object:
    """Where the kill's global cancel goes (host, port, client id), or why not, in a few words."""
    try:
        target = target_for(setup, journal, client_id, **flags)
    except UsageError as refused:
        said = "must differ from the engine's"
        return f"refused: {said}" if said in refused.message else refused
    if isinstance(target, NotSent):
        return f"not sent, exit {target.code}"
    assert isinstance(target, GatewayTarget)
    return target.host, target.port, target.client_id
