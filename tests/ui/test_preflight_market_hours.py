"""The live preflight says the market data as the watchlist does: a closed market is closed, not live.

QA armed live trading before the open: the preflight said ``Market data: live, 8 symbols — ok`` while every
watched market was closed (the watchlist's feeds said CLOSED, the status bar ``markets closed``).
"""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Button

from tui_trader.domain import Mode
from tui_trader.domain.market import MarketPhase
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.demo import normal_state
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.screens.preflight import PreflightScreen
from tui_trader.ui.widgets.line_table import LineTable

from .conftest import Console, running, screen_lines

ACCOUNT = "U7654321"


def live_state(phases: dict[str, MarketPhase]) -> EngineSnapshot:
    """A live session's snapshot whose markets are in ``phases``."""
    return replace(normal_state(), mode=Mode.LIVE, account_id=ACCOUNT, market_phases=phases)


def market_data(c: Console) -> tuple[str, ...]:
    """The preflight's market data row: check, finding, verdict."""
    screen = c.app.screen
    assert isinstance(screen, PreflightScreen)
    return next(row.cells for row in screen.query_one(LineTable).rows if row.key == "Market data")


async def test_preflight_when_every_market_is_closed_then_it_says_markets_closed_and_which_and_arms() -> None:
    # Arrange
    symbols = sorted(normal_state().quotes)
    state = live_state(dict.fromkeys(symbols, MarketPhase.CLOSED))
    async with running(state, size=(80, 24), options=ConsoleOptions(mode=Mode.LIVE)) as c:
        # Act
        await c.pull()
        # Assert
        assert market_data(c) == ("Market data", f"markets closed: {', '.join(symbols)}", "ok")
        drawn = next(line for line in screen_lines(c.app) if "Market data" in line)
        assert f"markets closed: {symbols[0]}, {symbols[1]}" in drawn
        assert "live" not in drawn
        await c.pilot.press(*ACCOUNT)  # a closed market is no failure: the session still arms
        await c.settle()
        assert not c.app.screen.query_one("#arm", Button).disabled


async def test_preflight_when_some_markets_are_closed_or_outside_regular_hours_then_it_names_them() -> None:
    phases = {"AAPL": MarketPhase.CLOSED, "MSFT": MarketPhase.CLOSED, "NVDA": MarketPhase.PRE,
              "QQQ": MarketPhase.OPEN}
    async with running(live_state(phases), options=ConsoleOptions(mode=Mode.LIVE)) as c:
        await c.pull()
        live = len(normal_state().quotes) - 3
        assert market_data(c) == ("Market data", f"CLOSED: AAPL, MSFT · PRE: NVDA · {live} live", "ok")


async def test_preflight_when_the_market_is_open_then_live_as_before() -> None:
    phases = dict.fromkeys(normal_state().quotes, MarketPhase.OPEN)
    async with running(live_state(phases), options=ConsoleOptions(mode=Mode.LIVE)) as c:
        await c.pull()
        assert market_data(c) == ("Market data", f"live, {len(phases)} symbols", "ok")
