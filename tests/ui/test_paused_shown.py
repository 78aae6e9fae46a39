"""A paused strategy shows on the main screen for as long as it is paused.

QA paused one with ``p`` + Enter: only an INFO alert said so, the status bar still said ACTIVE and no pane showed
PAUSED, so a strategy that sends nothing looked like one waiting for its signal.
"""

from __future__ import annotations

from dataclasses import replace

from tui_trader.ui.widgets.status_bar import StatusBar

from .conftest import running, screen_lines


async def test_pause_strategy_when_paused_then_status_bar_says_it_until_resumed() -> None:
    # Arrange
    async with running() as c:
        bar = c.app.main.query_one(StatusBar)
        assert bar.texts["paused"] == ""
        # Act
        await c.pilot.press("p")
        await c.settle()
        await c.pilot.press("enter")
        await c.pull()
        # Assert
        assert bar.texts["paused"].strip() == "ema_cross PAUSED"
        assert "ema_cross PAUSED" in screen_lines(c.app)[0]
        assert "ACTIVE" in screen_lines(c.app)[0]  # the trading state is still said beside it
        c.engine.pause_strategy("ema_cross", False)  # resumed
        await c.pull()
        assert "PAUSED" not in screen_lines(c.app)[0]


async def test_status_bar_when_several_strategies_paused_then_says_how_many() -> None:
    async with running() as c:
        strategies = tuple(replace(s, paused=True) for s in c.engine.state.strategies)
        assert len(strategies) > 1
        c.engine.state = replace(c.engine.state, strategies=strategies)
        await c.pull()
        assert f"{len(strategies)} strategies PAUSED" in screen_lines(c.app)[0]
