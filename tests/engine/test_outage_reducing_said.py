"""The REDUCING the disconnect trigger set in an outage stays once the link is back (an operator decides when to trade
again, as after every risk trigger), and the line that says the link is back says so and how to end it: it read as
all clear while every entry was denied."""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import ConnectionState, TradingState
from tui_trader.risk import TriggerAction
from tui_trader.sim import SimGateway

from .helpers import CLIENT_ID, eventually, limits_for_tests, make_config, running
from .test_lost_link_said import alerts_of


async def test_lost_link_when_the_disconnect_trigger_reduced_then_reducing_stays_and_the_reconnected_line_says_so(
        sim: SimGateway, tmp_path: Path) -> None:
    limits = limits_for_tests(disconnect_halt_after_s=0.1, disconnect_action=TriggerAction.REDUCING)
    async with running(sim, make_config(tmp_path, limits=limits, reconnect_initial_s=0.6,
                                        reconnect_max_s=0.6)) as (engine, events):
        events.drain()
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: engine.trading_state is TradingState.REDUCING, what="REDUCING by the trigger")
        await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED, what="the link back")
        said = alerts_of(events.drain())

        assert engine.trading_state is TradingState.REDUCING
    assert [a.text for a in said if a.kind == "reconnected"] == [
        "reconnected and reconciled: new entries no longer blocked by the lost link; trading state still REDUCING "
        "(risk:disconnect): resume trading to end it (the console's r; a headless run keeps it to its end)"]
