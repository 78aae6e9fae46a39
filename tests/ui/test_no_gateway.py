"""The console of a user who has not started IB Gateway yet: why there is no connection, said once.

A real engine against a loopback port nothing listens on (the connect is refused at once), through the
real ib_async; no simulator. The scripted engine covers the connection changes the console alerts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine.helpers import CLIENT_ID, eventually, make_config
from ops.servers import closed_port
from textual.pilot import Pilot

from tui_trader.domain.enums import AlertLevel, ConnectionState
from tui_trader.domain.events import ConnectionChanged, Event
from tui_trader.engine.engine import Engine
from tui_trader.engine.factory import make_broker
from tui_trader.engine.process.views import down
from tui_trader.ui.app import TraderApp, create_app
from tui_trader.ui.demo import FROZEN, disconnected_state, normal_state
from tui_trader.ui.format import hhmmss
from tui_trader.ui.freshness import link_state
from tui_trader.ui.scripted_engine import ScriptedEngine
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.status_bar import StatusBar

from .conftest import running

REASON = "connection refused (is the gateway running, listening on this port?)"


@asynccontextmanager
async def refused_console(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[TraderApp, Pilot[int], Engine]]:
    """The console at 160x48 on an engine whose gateway port refuses, once the first connect has failed and the
    console has drawn it."""
    engine = Engine(make_config(tmp_path, **config), make_broker("127.0.0.1", closed_port(), CLIENT_ID, timeout=3.0))
    app = create_app(engine)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.main.query_one("#connectivity-table", LineTable)
            await eventually(lambda: any(row.key.startswith("err") for row in table.rows),
                             what="the failed connect in the connectivity pane")
            yield app, pilot, engine
    finally:
        await engine.stop()


def handed_over(app: TraderApp) -> bool:
    """Every event the engine published so far is in the panes: the console's subscription and the main screen's
    messages drained (the bridge takes a batch off the queue and posts it in one step)."""
    subscription = app.bridge.subscription
    return subscription is not None and subscription.backlog == 0 and app.main.message_queue_size == 0


def said(app: TraderApp) -> list[tuple[AlertLevel, str, str]]:
    """The alerts about the link (the broker's and the console's own), oldest first."""
    return [(a.level, a.source, a.text) for a in app.main.query_one(AlertsPane).alerts
            if a.source in ("broker", "console")]


async def test_no_gateway_when_the_connect_is_refused_then_the_pane_says_why_in_full_and_when_it_tries_again(
        tmp_path: Path) -> None:
    # The pane's last error read "19:37:46 could not connect to 127.…": the reason was cut, and the status bar
    # said "● CONNECTING" under panes saying DISCONNECTED.
    async with refused_console(tmp_path, reconnect_initial_s=20, reconnect_max_s=20) as (app, _, engine):
        snapshot = app.main.snapshot
        assert snapshot is not None
        conn = snapshot.connection
        table = app.main.query_one("#connectivity-table", LineTable)
        keys = [row.key for row in table.rows]
        cells = {row.key: row.cells for row in table.rows}
        waiting = re.compile(r"DISCONNECTED · retry in (1[5-9]|2[0-6]) s")  # 20 s within ±25 %
        assert waiting.fullmatch(cells["state"][1])
        assert waiting.fullmatch(app.main.query_one(StatusBar).texts["link"].removeprefix("● "))
        error = [key for key in keys if key.startswith("err")]
        assert len(error) > 1  # wrapped over the lines it needs, not cut
        assert keys[:3 + len(error)] == ["gw", "cid", "state", *error]  # under the state, above the fold
        assert all(len(cells[key][1]) <= table.column_width(1) for key in error)
        expected = f"{hhmmss(conn.last_error_at, snapshot.time_zone)} {REASON}"
        assert " ".join(cells[key][1] for key in error) == expected
        assert cells["gw"][1] == f"127.0.0.1:{engine.connection.port}"  # where, said once, on its own row


async def test_no_gateway_when_connects_keep_failing_then_one_alert_says_so_and_the_tries_add_none(
        tmp_path: Path) -> None:
    # One failed start gave two ERROR rows ("console  connection DISCONNECTED could not connect …" under the
    # engine's "broker  could not connect …"), and the first retry another "connection CONNECTING".
    async with refused_console(tmp_path) as (app, _, engine):  # tries again within 0.05-0.25 s
        failures = set()

        def tried_three_times() -> bool:
            failures.add(engine.connection.last_error_at)
            return len(failures - {None}) >= 3

        await eventually(tried_three_times, what="the start's connect and two retries refused")
        app.main.request_refresh()
        await eventually(lambda: handed_over(app), what="every event the engine published in the panes")
        alerts = said(app)
        assert [(level, source) for level, source, _ in alerts] == [
            (AlertLevel.INFO, "console"), (AlertLevel.ERROR, "broker")]
        assert alerts[0][2] == "connection CONNECTING"  # the start's connect, not each retry's
        assert alerts[1][2].startswith(f"could not connect to 127.0.0.1:{engine.connection.port}: {REASON}; ")
    assert engine.connection.retry_at is None  # stopped: no next try is promised


async def test_connection_alerts_when_a_link_is_lost_and_tried_again_then_the_console_adds_only_the_link_made(
        ) -> None:
    # The lost link, the failed try and when the next comes are the engine's alerts (one row each, against the real
    # engine in test_alert_rows); the console's own "connection DISCONNECTED …" under them said each a second time.
    s = ConnectionState
    events: list[Event] = [
        ConnectionChanged(FROZEN, s.CONNECTING, "", s.DISCONNECTED),
        ConnectionChanged(FROZEN, s.CONNECTED, "account DUSIM0042", s.CONNECTING),
        ConnectionChanged(FROZEN, s.DISCONNECTED, "connection lost", s.CONNECTED),
        ConnectionChanged(FROZEN, s.CONNECTING, "", s.DISCONNECTED),
        ConnectionChanged(FROZEN, s.DISCONNECTED, "could not connect to 127.0.0.1:4002: …", s.CONNECTING),
        ConnectionChanged(FROZEN, s.CONNECTING, "", s.DISCONNECTED),
        ConnectionChanged(FROZEN, s.CONNECTED, "account DUSIM0042", s.CONNECTING)]
    async with running(engine=ScriptedEngine(normal_state(), start_events=events)) as c:
        await c.pull()
        assert [(a.level, a.text) for a in c.app.main.query_one(AlertsPane).alerts if a.source == "console"] == [
            (AlertLevel.INFO, "connection CONNECTING"),
            (AlertLevel.INFO, "connection CONNECTED account DUSIM0042"),
            (AlertLevel.INFO, "connection CONNECTED account DUSIM0042")]


def test_link_state_when_the_retry_is_due_or_the_engine_process_is_gone_then_no_countdown_is_shown() -> None:
    conn = disconnected_state().connection
    assert conn.retry_at is not None
    assert link_state(conn, conn.retry_at - timedelta(seconds=2.5)) == "DISCONNECTED · retry in 3 s"
    assert link_state(conn, conn.retry_at) == "DISCONNECTED · retrying"  # the engine is about to try
    trying = replace(conn, state=ConnectionState.CONNECTING, retry_at=None)
    assert link_state(trying, FROZEN) == "CONNECTING"
    # The engine process is gone: nobody will try again, whatever its last snapshot promised.
    gone = down(disconnected_state(), "the engine process exited (code 1)").connection
    assert link_state(gone, FROZEN) == "DISCONNECTED"
