"""The console's layout on a small terminal (80x24, an SSH session on a VPS) and a large one (160x48):
what the operator must see is on screen, not cut off or hidden."""

from __future__ import annotations

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tui_trader.ui.screens.help import HelpScreen

from .conftest import SIZES, Console, running, screen_lines


def footer_line(c: Console) -> str:
    return screen_lines(c.app)[-1]


def footer_keys(c: Console) -> list[str]:
    """The footer's keys (but the palette's, docked right) in order: ``"^k KILL"``, ``"? Help"``, …"""
    footer = c.app.screen.query_one(Footer)
    return [f"{key.key_display} {key.description}" for key in footer.query(FooterKey)
            if not key.has_class("-command-palette")]


async def test_compact_layout_when_tab_reaches_hidden_pane_then_it_opens_and_escape_returns_focus() -> None:
    async with running(size=(80, 24)) as c:
        await c.pilot.press("4", "tab")
        await c.settle()
        assert c.app.main.maximized is not None
        assert c.app.main.maximized.id == "pnl-pane"
        assert "5 P&L and risk" in screen_lines(c.app)[1]
        await c.pilot.press("escape")
        await c.settle()
        # Textual takes focus from the pane it hides again: it goes back to where the operator was.
        assert c.app.main.maximized is None
        assert c.app.focused is not None
        assert c.app.focused.id == "alerts-table"


async def test_compact_layout_when_hidden_pane_follows_hidden_pane_then_escape_returns_to_first_pane() -> None:
    async with running(size=(80, 24)) as c:
        await c.pilot.press("3", "7", "6")
        await c.settle()
        assert "6 Connectivity" in screen_lines(c.app)[1]
        await c.pilot.press("m")
        await c.settle()
        assert c.app.main.maximized is None
        assert c.app.focused is not None
        assert c.app.focused.id == "orders-table"


async def test_wide_layout_when_pane_focused_then_not_maximised() -> None:
    async with running(size=(160, 48)) as c:
        await c.pilot.press("7")
        await c.settle()
        assert c.app.main.maximized is None
        assert c.app.focused is not None
        assert c.app.focused.id == "health-table"


@pytest.mark.parametrize("size", SIZES)
async def test_footer_at_any_width_then_kill_switch_and_help_first(size: tuple[int, int]) -> None:
    async with running(size=size) as c:
        keys = footer_keys(c)
        assert keys[:2] == ["^k KILL", "? Help"]
        line = footer_line(c)
        assert line.startswith(" ^k KILL  ? Help ")
        for key in keys:  # drawn whole, none under the palette key
            assert f" {key} " in line.split("▏")[0]
        assert line.rstrip().endswith("^p palette")


async def test_footer_at_80_columns_then_less_important_keys_dropped_first() -> None:
    async with running(size=(80, 24)) as c:
        keys = footer_keys(c)
        assert {"X Cancel all", "f Flatten", "r Reducing", "x Cancel"} <= set(keys)
        assert not {"m Max", "/ Filter", "p Pause"} & set(keys)


async def test_footer_when_terminal_shrinks_then_keys_fitted_again() -> None:
    async with running(size=(160, 48)) as c:
        assert "^r Reset kill" in footer_keys(c)
        await c.pilot.resize_terminal(80, 24)
        await c.eventually(lambda: footer_keys(c)[:1] == ["^k KILL"] and "^r Reset kill" not in footer_keys(c)
                           and len(footer_line(c)) == 80, "the keys fitted to 80 columns")
        assert "^r Reset kill" not in footer_keys(c)
        line = footer_line(c)
        assert line.startswith(" ^k KILL  ? Help ")
        assert len(line) == 80


async def test_footer_on_order_trace_screen_then_kill_switch_first() -> None:
    async with running(size=(80, 24)) as c:
        await c.pilot.press("3", "t")
        await c.eventually(lambda: c.app.screen.id == "trace-screen" and screen_lines(c.app)[-1:] != [],
                           "the order's trace drawn")
        assert c.app.screen.id == "trace-screen"
        assert footer_line(c).startswith(" ^k KILL  ? Help ")


@pytest.mark.parametrize("size", SIZES)
async def test_help_screen_then_its_notes_are_whole_on_screen(size: tuple[int, int]) -> None:
    async with running(size=size) as c:
        await c.pilot.press("question_mark")
        await c.settle()
        assert isinstance(c.app.screen, HelpScreen)
        inside = [line[line.index("█") + 1:line.rindex("█")] for line in screen_lines(c.app) if line.count("█") >= 2]
        # the notes wrap inside the dialog: their last words are drawn
        assert "send test notification, …)" in " ".join(" ".join(inside).split())
