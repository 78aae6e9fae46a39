"""One alert row for one thing that happened: a lost link, a broken farm, a trading-state change.

The console derived an alert from each connection and trading-state change; the engine raises its own for most of
them. Each was two rows ("broker  disconnected from the broker; reconnecting" over "console  connection
DISCONNECTED connection lost"). A connection change is now said by one of them only (the console says the start's
connect and the link made); a trading-state change's two are merged. Against the real engine on the simulator where
it can be made to happen, the scripted engine for the kill and the operator's own change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from engine.helpers import CLIENT_ID, eventually, limits_for_tests, long_at_the_broker, make_config, make_engine
from ops.servers import closed_port

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, ConnectionState, TradingState
from tui_trader.domain.events import AlertRaised, TradingStateChanged
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.risk.limits import TriggerAction
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.ui.app import TraderApp, create_app
from tui_trader.ui.demo import FROZEN, normal_state
from tui_trader.ui.scripted_engine import ScriptedEngine
from tui_trader.ui.widgets.alerts import AlertsPane

from .conftest import running


def rows(app: TraderApp) -> list[Alert]:
    """The alerts pane's rows, oldest first."""
    return app.main.query_one(AlertsPane).alerts


@asynccontextmanager
async def console_on(engine: Engine) -> AsyncIterator[TraderApp]:
    """The console on ``engine``, stopped at the end."""
    app = create_app(engine)
    try:
        async with app.run_test(size=(160, 48)):
            yield app
    finally:
        await engine.stop()


async def test_alert_rows_when_a_link_that_was_up_is_lost_then_one_error_row_says_it_was_lost(
        tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path))
        async with console_on(engine) as app:
            await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="connected")
            gw.control.refuse_connections(3600)

            gw.control.drop_sessions(CLIENT_ID)

            # The engine's failed reconnect is said after the lost link: once it is on the pane, so is all of that.
            await eventually(lambda: any("could not connect" in a.text for a in rows(app)), what="a reconnect tried")
            (row,) = [a for a in rows(app) if "disconnected from" in a.text or "DISCONNECTED" in a.text]
            assert (row.level, row.source, row.kind) == (AlertLevel.ERROR, "broker", "disconnect")
            assert row.text == "disconnected from the broker; reconnecting (new entries blocked until reconciled)"


async def test_alert_rows_when_a_data_farm_breaks_and_recovers_then_one_row_each_in_the_engine_words(
        tmp_path: Path) -> None:
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path))
        async with console_on(engine) as app:
            await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="connected")

            gw.control.send_error(2103)

            await eventually(lambda: engine.connection.state is ConnectionState.DEGRADED, what="degraded")
            # The engine alerts after it publishes the change: its words on the pane, all of it is there.
            await eventually(lambda: any("market data degraded" in a.text for a in rows(app)), what="the farm said")
            (row,) = [a for a in rows(app) if "2103" in a.text]
            assert (row.level, row.source, row.kind) == (AlertLevel.WARNING, "broker", "farm_broken")
            assert row.text.startswith("market data degraded (2103): ")

            gw.control.send_error(2104)

            await eventually(lambda: any("2104" in a.text for a in rows(app)), what="the farm back")
            (back,) = [a for a in rows(app) if "2104" in a.text]
            assert (back.level, back.source, back.kind) == (AlertLevel.INFO, "broker", "farm_ok")
            assert back.text == "market data farm back (2104): Market data farm connection is OK:usfarm"


async def test_alert_rows_when_ib_loses_connectivity_1100_then_one_error_row_says_it_and_the_reconnect(
        tmp_path: Path) -> None:
    # Two rows: "broker  connectivity lost (1100): …" (WARNING) over "broker  disconnected from the broker;
    # reconnecting", which the console's own "connection DISCONNECTED connection lost" was merged into.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path))
        async with console_on(engine) as app:
            await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="connected")

            gw.control.connectivity_lost()
            # TWS says 1100 to each client that connects while IB is unreachable: not back until IB is.
            await eventually(lambda: any(a.kind == "connect_failed" for a in rows(app)), what="a reconnect told 1100")
            gw.control.connectivity_restored()

            await eventually(lambda: engine.reconnects == 1 and not engine.blocks, what="reconnected")
            await eventually(lambda: "connection CONNECTED" in rows(app)[-1].text, what="the rows of it all")
            about = [a for a in rows(app) if a.source in ("broker", "console") and "CONNECT" not in a.text]
            assert [(a.level, a.source, a.kind, a.text.split(": ", 2)[-1].split(";")[0]) for a in about] == [
                (AlertLevel.ERROR, "broker", "disconnect", "Connectivity between IB and Trader Workstation has been "
                 "lost"),
                (AlertLevel.WARNING, "broker", "connect_failed", "Connectivity between IB and Trader Workstation has "
                 "been lost"),
                (AlertLevel.INFO, "broker", "reconnected", "new entries no longer blocked by the lost link")]
            assert about[0].text.startswith("connectivity lost (1100): ")
            assert about[1].text.startswith(f"connected to 127.0.0.1:{gw.port} but the sync failed: connectivity "
                                            "lost (1100): ")


async def test_alert_rows_when_ib_servers_come_back_with_data_lost_1101_then_one_row_says_it_and_the_reconnect(
        tmp_path: Path) -> None:
    # The 1101 after a 2110 was three rows: the link to IB's servers "restored (1101): new entries allowed again"
    # (they were not: the session was dropped next), "market data lost (1101): …" and the disconnect.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path))
        async with console_on(engine) as app:
            await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="connected")
            gw.control.server_link_broken()
            await eventually(lambda: any(a.kind == "ib_link_broken" for a in rows(app)), what="2110 said")
            said = len(rows(app))

            gw.control.connectivity_restored(data_lost=True)

            await eventually(lambda: engine.reconnects == 1 and not engine.blocks, what="reconnected")
            await eventually(lambda: "connection CONNECTED" in rows(app)[-1].text, what="the rows of it all")
            about = [a for a in rows(app)[said:] if a.source in ("broker", "console") and "CONNECT" not in a.text]
            assert [(a.level, a.source, a.kind) for a in about] == [
                (AlertLevel.ERROR, "broker", "disconnect"), (AlertLevel.INFO, "broker", "reconnected")]
            assert about[0].text == ("market data lost (1101): Connectivity between IB and Trader Workstation has "
                                     "been restored - data lost; reconnecting to resubscribe (new entries blocked "
                                     "until reconciled)")


async def test_alert_rows_when_the_disconnect_trigger_reduces_a_run_never_connected_then_one_error_row_says_so(
        tmp_path: Path) -> None:
    limits = limits_for_tests(disconnect_halt_after_s=0.2, disconnect_action=TriggerAction.REDUCING)
    engine = Engine(make_config(tmp_path, limits=limits, reconnect_initial_s=30),
                    make_broker("127.0.0.1", closed_port(), CLIENT_ID, timeout=3.0))
    async with console_on(engine) as app:
        await eventually(lambda: engine.trading_state is TradingState.REDUCING, what="reducing by the trigger")

        # The engine alerts before it changes the state: the change on the pane, all of it is there.
        await eventually(lambda: any("→ REDUCING" in a.text for a in rows(app)), what="the trigger said")
        (row,) = [a for a in rows(app) if a.source in ("risk", "console") and "REDUC" in a.text.upper()]
        assert (row.level, row.source, row.kind) == (AlertLevel.ERROR, "risk", "disconnect")
        assert row.text.startswith("ACTIVE → REDUCING by risk:disconnect: no connection to the broker for ")
        assert row.text.endswith("s (limit 0.2s)")


async def test_alert_rows_when_the_kill_switch_engages_then_one_critical_row() -> None:
    async with running() as c:
        await c.pilot.press("ctrl+k")
        await c.pull()
        halted = [a for a in rows(c.app) if "HALTED" in a.text or "kill switch" in a.text]
        assert [(a.level, a.source, a.kind) for a in halted] == [(AlertLevel.CRITICAL, "kill_switch", "kill")]
        assert halted[0].text.startswith("kill switch engaged by operator (manual): ")


async def test_alert_rows_when_the_real_engine_kills_and_releases_then_one_row_each_in_the_engines_words(
        tmp_path: Path) -> None:
    # The engine's alert and the console's trading-state change merge (alert_pairs: KILL_ENGAGED, KILL_RELEASED);
    # the release said twice: "kill switch released by alice: …" and "HALTED → ACTIVE by alice: …".
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path))
        async with console_on(engine) as app:
            await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="connected")
            # The console's own row of the connect comes with a later pull: counted before it, it landed among the
            # kill's rows (under load).
            await eventually(lambda: any("connection CONNECTED" in a.text for a in rows(app)), what="the connect said")
            said = len(rows(app))

            engine.kill("feed looks wrong", by="alice")
            engine.reset_kill("feed checked", by="alice", confirm_same_day=True)

            await eventually(lambda: any(a.kind == "kill_reset" for a in rows(app)), what="the release said")
            about = [(a.source, a.kind, a.text) for a in rows(app)[said:] if a.source in ("console", "kill_switch")]
            assert about == [("kill_switch", "kill", "kill switch engaged by alice (manual): feed looks wrong"),
                             ("kill_switch", "kill_reset", "kill switch released by alice: feed checked")]


async def test_alert_rows_when_a_position_mismatch_halts_then_one_critical_row_names_each_symbols_quantities(
        tmp_path: Path) -> None:
    # The reconciliation's ERROR "position mismatch: AAPL: ours 0, broker 5" was a row of its own above the kill's.
    async with SimGateway(port=0, clock=ManualClock(), seed=7, always_open=True) as gw:
        engine = make_engine(gw, make_config(tmp_path))
        async with console_on(engine) as app:
            await eventually(lambda: any("connection CONNECTED" in a.text for a in rows(app)), what="the connect said")
            said = len(rows(app))

            # Act: 5 AAPL bought in TWS, read at two position checks in a row.
            await long_at_the_broker(gw, 5)
            await eventually(lambda: engine.broker_quantities().get("AAPL") == 5, what="the broker's position")
            engine.check_positions_debounced()
            engine.check_positions_debounced()

            # Assert
            await eventually(lambda: any(a.kind == "kill" for a in rows(app)), what="the trip said")
            about = [a for a in rows(app)[said:] if a.level.rank >= AlertLevel.ERROR.rank]
            assert [(a.level, a.source, a.kind) for a in about] == [(AlertLevel.CRITICAL, "kill_switch", "kill")]
            assert about[0].text.startswith("kill switch engaged by risk:position_mismatch (position_mismatch): "
                                            "position mismatch with the broker: AAPL: ours 0, broker 5. ")


async def test_alert_rows_when_the_operator_reduces_or_the_engine_alert_comes_first_then_each_change_one_row(
        ) -> None:
    risk = Alert(AlertLevel.ERROR, "risk", "daily_loss limit reached: 5,000 USD (limit 5,000) -> REDUCING: "
                 "reducing only", FROZEN, kind="daily_loss")
    events = [TradingStateChanged(FROZEN, TradingState.ACTIVE, TradingState.REDUCING, "alice", "news at 2"),
              TradingStateChanged(FROZEN, TradingState.REDUCING, TradingState.ACTIVE, "alice", "news out"),
              AlertRaised(FROZEN, risk),
              TradingStateChanged(FROZEN, TradingState.ACTIVE, TradingState.REDUCING, "risk:daily_loss",
                                  "daily_loss limit reached: 5,000 USD (limit 5,000) -> REDUCING")]
    async with running(engine=ScriptedEngine(normal_state(), start_events=events)) as c:
        await c.pull()
        said = [(a.level, a.source, a.text) for a in rows(c.app) if a.source in ("console", "risk")]
        assert said == [
            (AlertLevel.WARNING, "console", "ACTIVE → REDUCING by alice: news at 2"),
            (AlertLevel.WARNING, "console", "REDUCING → ACTIVE by alice: news out"),
            (AlertLevel.ERROR, "risk", "ACTIVE → REDUCING by risk:daily_loss: daily_loss limit reached: 5,000 USD "
             "(limit 5,000) -> REDUCING")]
