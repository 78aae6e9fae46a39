"""The console at night, around the real engine on a simulator keeping New York's hours: markets closed.

QA: with the simulator on exchange hours, outside them prices stood still while the watchlist's feed badges and
the status bar said LIVE (a live market, read by a trader at night), or STALE and DEGRADED once the quotes aged (an
alarm for a market that is simply closed). The engine is in paper mode (it follows the broker's hours; ``--sim``'s
own simulator trades around the clock) and it, the simulator and the console share one manual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from engine.helpers import make_engine

from tui_trader.config import Settings
from tui_trader.domain import Mode
from tui_trader.engine.config import config_from_settings
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway
from tui_trader.ui.app import create_app
from tui_trader.ui.widgets.status_bar import StatusBar

from .piloted import PilotedConsole

SYMBOLS = ("AAPL", "MSFT")
NIGHT = datetime(2024, 3, 6, 2, 0, tzinfo=UTC)  # Tuesday 21:00 New York: after the 20:00 end of extended hours
NEXT_MORNING_S = 13.5 * 3600  # to Wednesday 10:30 New York


@asynccontextmanager
async def console_at_night(tmp_path: Path) -> AsyncIterator[tuple[PilotedConsole, Engine, ManualClock]]:
    """The console on a paper engine, both on the simulator's manual clock, quotes and hours in."""
    clock = ManualClock(NIGHT)
    config = config_from_settings(Settings(mode=Mode.PAPER)).with_(
        journal_path=tmp_path / "journal.sqlite", symbols=SYMBOLS, strategies=(), market_data_stale_s=3600,
        tick_interval_s=0.05)
    async with SimGateway(port=0, clock=clock, seed=7) as gw:
        engine = make_engine(gw, config, clock=clock.now)
        app = create_app(engine, clock=clock.now)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                console = PilotedConsole(app, gw, pilot)
                await console.until(lambda: set(SYMBOLS) <= set(console.rows("watchlist-table")),
                                    "quotes in the watchlist")
                yield console, engine, clock
        finally:
            await engine.stop()


def badges(console: PilotedConsole) -> dict[str, str]:
    """The feed badge per symbol, as drawn."""
    return {symbol: cells[-1] for symbol, cells in console.rows("watchlist-table").items()}


async def test_console_when_every_market_is_closed_then_feeds_closed_and_the_status_bar_says_so_until_the_open(
        tmp_path: Path) -> None:
    async with console_at_night(tmp_path) as (c, _engine, clock):
        bar = c.app.main.query_one(StatusBar)
        await c.until(lambda: badges(c) == dict.fromkeys(SYMBOLS, "CLOSED"), "CLOSED feeds")
        assert bar.texts["link"] == "● CONNECTED · markets closed"
        assert bar.variants["link"] == ("link-closed",)
        assert c.app.main.query_one("#watchlist-pane").border_subtitle.startswith("markets closed ·")

        clock.advance(NEXT_MORNING_S)
        await c.until(lambda: badges(c) == dict.fromkeys(SYMBOLS, "LIVE"), "LIVE feeds after the open")
        assert bar.texts["link"] == "● CONNECTED"
