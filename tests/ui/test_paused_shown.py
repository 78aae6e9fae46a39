"""A paused strategy shows on the main screen for as long as it is paused.

QA paused one with ``p`` + Enter: only an INFO alert said so, the status bar still said ACTIVE and no pane showed
PAUSED, so a strategy that sends nothing looked like one waiting for its signal.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.demo import halted_state, normal_state
from tui_trader.ui.format import money
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


LONG_NAMES = ("volume_breakout_on_the_opening_range", "vwap_reversion_after_the_first_hour")


def paused_as(state: EngineSnapshot, count: int) -> EngineSnapshot:
    """``state`` with its strategies given long names and the first ``count`` of them paused."""
    strategies = tuple(replace(s, name=name, paused=i < count)
                       for i, (s, name) in enumerate(zip(state.strategies, LONG_NAMES, strict=True)))
    return replace(state, strategies=strategies)


@pytest.mark.parametrize(("state", "count", "paused"), [
    pytest.param(normal_state(), 1, re.compile(r" volume_b\w*… PAUSED "), id="one-name-cut"),
    pytest.param(normal_state(), 2, re.compile(r" 2 strategies PAUSED "), id="several"),
    pytest.param(halted_state(), 2, re.compile(r" 2 PAUSED "), id="halted-count-only"),
])
async def test_status_bar_at_80_columns_when_long_named_strategies_are_paused_then_every_essential_fact_stays(
        state: EngineSnapshot, count: int, paused: re.Pattern[str]) -> None:
    # A long name pushed the link (and all after it) off the bar: the operator read no connection state.
    # Arrange
    state = paused_as(state, count)
    async with running(state, size=(80, 24)) as c:
        # Act
        await c.pull()
        # Assert
        bar = f" {screen_lines(c.app)[0]} "
        essentials = [state.mode.value.upper(), state.account_id, state.trading_state.value, "● CONNECTED",
                      money(state.account.equity), money(state.account.day_pnl, signed=True)]
        assert [fact for fact in essentials if f" {fact} " not in bar] == [], bar
        assert paused.search(bar), bar
