"""A kill reset that resumes trading beside positions with no stop says so. Found by QA: the operator's kill
cancelled the positions' stops (as it should), the reset resumed ACTIVE, strategies traded again, and AAPL,
NVDA and QQQ stayed without a stop with nothing said."""

from __future__ import annotations

from tui_trader.domain import AlertLevel, OrderStatus, TradingState
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import SimGateway

from .helpers import alerts_said, bracket_buy, kill_checked, status

S = OrderStatus


def _said(events: Subscription) -> list[tuple[AlertLevel, str]]:
    return [(a.level, a.text) for a in alerts_said(events, kind="unprotected_after_reset")]


async def test_reset_after_the_operators_kill_cancelled_the_stops_then_a_warning_names_the_positions(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange: long 5 AAPL and 3 MSFT, each with its stop; Ctrl+K cancels both stops.
    aapl_stop = await bracket_buy(sim, engine, "AAPL", qty=5)
    msft_stop = await bracket_buy(sim, engine, "MSFT", qty=3)
    events = engine.subscribe("test", lossless=True)
    engine.kill("operator pressed Ctrl+K")
    await kill_checked(events)
    assert {status(engine, aapl_stop.order_ref), status(engine, msft_stop.order_ref)} == {S.CANCELLED}

    # Act
    engine.reset_kill("checked the book", by="operator", confirm_same_day=True)

    # Assert
    assert _said(events) == [(AlertLevel.WARNING, "trading resumed with no protective stop at the broker for: "
                                                  "AAPL LONG 5, MSFT LONG 3; place stops or flatten them")]


async def test_reset_after_an_automatic_trip_kept_the_stops_then_nothing_to_say(
        engine: Engine, sim: SimGateway) -> None:
    stop = await bracket_buy(sim, engine, "AAPL", qty=5)
    events = engine.subscribe("test", lossless=True)
    engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)
    await kill_checked(events)
    assert status(engine, stop.order_ref) is S.SUBMITTED

    engine.reset_kill("drawdown reviewed", by="operator", confirm_same_day=True)

    assert engine.trading_state is TradingState.ACTIVE
    assert _said(events) == []
