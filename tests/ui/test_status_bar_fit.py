"""The status bar on a narrow terminal: lesser fields go whole, the essential ones stay, no figure is cut.

At 80 columns (a VPS over SSH) the bar was cut at its right edge: day P&L read "Day -2,663.50 -0.27" (or
"Day -2,663" with the kill engaged, "D" while disconnected), and the heartbeat and clock were gone or half there.
A cut figure reads as another amount.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tui_trader.domain import Mode
from tui_trader.domain.enums import Side
from tui_trader.domain.orders import Fill
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.demo import disconnected_state, halted_state, normal_state, stalled_state
from tui_trader.ui.format import money
from tui_trader.ui.widgets.status_bar import StatusBar

from .conftest import Console, running, screen_lines

FIGURE = re.compile(r"[-+]?\d[\d,.:]*%?")
"""A figure as the bar writes it: an amount, a percentage, an age, a time, the digits of an account id."""


def live_dry_run_halted_disconnected() -> EngineSnapshot:
    """The widest left side: LIVE, DRY-RUN, the kill engaged, the link down with a retry pending."""
    return replace(halted_state(), mode=Mode.LIVE, dry_run=True, connection=disconnected_state().connection)


def essentials(state: EngineSnapshot, link: str) -> list[str]:
    """What the bar must say, each in words of its own (``SIM``, not the one in ``DUSIM0042``): mode, DRY-RUN,
    account, trading state, link, the equity and day P&L figures in full."""
    return [state.mode.value.upper(), *(["DRY-RUN"] if state.dry_run else []), state.account_id,
            state.trading_state.value, link, money(state.account.equity), money(state.account.day_pnl, signed=True)]


def cut_figures(c: Console) -> set[str]:
    """The figures on the bar's line that are none of its fields' figures in full (a figure cut at the edge)."""
    whole = set(FIGURE.findall(" ".join(c.app.main.query_one(StatusBar).texts.values())))
    return set(FIGURE.findall(screen_lines(c.app)[0])) - whole


def a_fill() -> Fill:
    """`` last fill BUY 12 MSFT @ 410.77 10:15:03`` on the bar (New York time)."""
    return Fill("e1", "tt-1", "MSFT", Side.BUY, 12, 410.77, datetime(2025, 3, 14, 14, 15, 3, tzinfo=UTC))


@pytest.mark.parametrize(("state", "link", "size"), [
    pytest.param(normal_state(), "● CONNECTED", (80, 24), id="normal-80"),
    pytest.param(halted_state(), "● CONNECTED", (80, 24), id="killed-80"),
    pytest.param(disconnected_state(), "● DISCONNECTED", (80, 24), id="disconnected-80"),
    pytest.param(stalled_state(), "● STALLED 12s", (80, 24), id="stalled-80"),
    pytest.param(live_dry_run_halted_disconnected(), "● DISCONNECTED", (80, 24), id="live-dry-run-killed-down-80"),
    pytest.param(normal_state(), "● CONNECTED", (60, 24), id="normal-60"),
])
async def test_status_bar_when_too_narrow_for_every_field_then_each_essential_one_is_shown_whole(
        state: EngineSnapshot, link: str, size: tuple[int, int]) -> None:
    # Arrange
    async with running(state, size=size) as c:
        # Act
        await c.pull()
        # Assert
        bar = f" {screen_lines(c.app)[0]} "
        assert [fact for fact in essentials(state, link) if f" {fact} " not in bar] == [], bar
        assert cut_figures(c) == set(), bar


async def test_status_bar_when_narrowed_then_the_last_fill_heartbeat_and_clock_go_whole_in_that_order() -> None:
    # Arrange
    async with running(normal_state(), size=(160, 24)) as c:
        c.app.main.query_one(StatusBar).show_fill(a_fill(), "America/New_York")
        shown: dict[int, list[str]] = {}
        for width in (160, 120, 100, 80):
            # Act
            await c.pilot.resize_terminal(width, 24)
            await c.pull()
            bar = screen_lines(c.app)[0]
            shown[width] = [what for what in ("last fill BUY 12 MSFT @ 410.77 10:15:03", "hb 0.1s", "10:30:00 EDT")
                            if what in bar]
            assert cut_figures(c) == set(), bar
        # Assert
        assert shown == {160: ["last fill BUY 12 MSFT @ 410.77 10:15:03", "hb 0.1s", "10:30:00 EDT"],
                         120: ["hb 0.1s", "10:30:00 EDT"], 100: ["10:30:00 EDT"], 80: []}


async def test_status_bar_at_any_width_then_no_figure_is_cut() -> None:
    # Arrange: every field the bar has, the widest it gets (two strategies paused: "2 PAUSED" cut short is not a cut
    # figure)
    state = live_dry_run_halted_disconnected()
    state = replace(state, strategies=tuple(replace(s, paused=True) for s in state.strategies))
    async with running(state, size=(170, 24)) as c:
        c.app.main.query_one(StatusBar).show_fill(a_fill(), "America/New_York")
        cut: dict[int, set[str]] = {}
        for width in range(170, 19, -4):
            # Act
            await c.pilot.resize_terminal(width, 24)
            await c.pull()
            cut[width] = cut_figures(c)
        # Assert
        assert {width: figures for width, figures in cut.items() if figures} == {}
