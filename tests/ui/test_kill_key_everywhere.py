"""Ctrl+K is the first key of the key bar on every screen the operator can be on, and it works there.

A modal screen's key bar lists the modal's own keys only: the order ticket's had no Ctrl+K at all, the approval's
listed it last (its own binding, copied into that one modal).
"""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tui_trader.domain.enums import TradingState
from tui_trader.ui.modals.approval import ApprovalModal
from tui_trader.ui.modals.error import ErrorModal
from tui_trader.ui.modals.order_ticket import OrderTicketModal
from tui_trader.ui.scripted_engine import ScriptedEngine

from .conftest import running, screen_lines
from .scenes import MODALS, SCENES

OPENED_BY = {name: keys[:1] for name, (_, keys, _, _) in SCENES.items()} | {
    "order_trace": ("3", "t"), "trace_export": ("3", "t", "e")}
"""The keys that open each scene's screen (none: the scene's state opens it); the scenes' typing left out."""


@pytest.mark.parametrize("name", ["normal", *MODALS])
async def test_key_bar_when_a_screen_or_dialog_is_on_top_then_it_starts_with_ctrl_k_and_ctrl_k_kills(
        name: str) -> None:
    state, _, events, options = SCENES[name]
    engine = ScriptedEngine(state(), start_events=events())
    async with running(engine=engine, options=options, size=(80, 24)) as c:
        if name == "error":
            c.app.push_screen(ErrorModal("The engine worker failed", "RuntimeError: boom", halted=True))
        await c.pilot.press(*OPENED_BY[name])
        await c.settle()
        on_top = type(c.app.screen).__name__
        assert name == "normal" or on_top != "MainScreen"
        assert screen_lines(c.app)[-1].startswith(" ^k KILL "), f"{on_top}: {screen_lines(c.app)[-1]!r}"

        await c.pilot.press("ctrl+k")

        assert [call[0] for call in engine.calls].count("kill") == 1, on_top
        assert engine.state.trading_state is TradingState.HALTED


async def test_key_bar_of_the_ticket_while_a_field_has_focus_then_ctrl_k_listed_first() -> None:
    # A focused Input binds Ctrl+K itself (delete to the end of the line, not listed): it hid a dialog's KILL.
    async with running(size=(160, 48)) as c:
        await c.pilot.press("n")
        await c.settle()
        assert isinstance(c.app.screen, OrderTicketModal)
        assert isinstance(c.app.focused, Input)

        assert screen_lines(c.app)[-1].split() == ["^k", "KILL", "esc", "Cancel", "^s", "Submit", "^t", "What-if"]


async def test_key_bar_of_the_approval_then_ctrl_k_first_then_its_own_keys() -> None:
    state, _, _, options = SCENES["approval"]
    async with running(state(), options=options, size=(160, 48)) as c:
        assert isinstance(c.app.screen, ApprovalModal)

        assert screen_lines(c.app)[-1].split() == ["^k", "KILL", "y", "Approve", "n", "Reject"]
