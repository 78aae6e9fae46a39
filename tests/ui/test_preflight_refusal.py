"""The live preflight says why an account id typed and entered does not arm.

QA typed a wrong id and pressed Enter: nothing happened (the Arm button only stayed disabled).
"""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Button, Label

from tui_trader.domain import Mode
from tui_trader.ui.demo import normal_state
from tui_trader.ui.options import ConsoleOptions
from tui_trader.ui.screens.preflight import PreflightScreen

from .conftest import running


def said(screen: PreflightScreen) -> str:
    return str(screen.query_one("#preflight-error", Label).render())


async def test_preflight_when_a_wrong_account_id_is_entered_then_it_says_so_until_the_id_changes() -> None:
    # Arrange
    state = replace(normal_state(), mode=Mode.LIVE, account_id="USIM0001")
    async with running(state, options=ConsoleOptions(mode=Mode.LIVE)) as c:
        screen = c.app.screen
        assert isinstance(screen, PreflightScreen)
        await c.pilot.press("enter")
        await c.settle()
        assert said(screen) == "Type the account id to arm."
        # Act
        await c.pilot.press(*"USIM0002", "enter")
        await c.settle()
        # Assert
        assert c.app.screen is screen
        assert said(screen) == "USIM0002 is not the connected account."
        assert screen.query_one("#arm", Button).disabled
        await c.pull()  # a snapshot's refresh keeps it
        assert said(screen) == "USIM0002 is not the connected account."
        await c.pilot.press("backspace", "1")
        await c.settle()
        assert said(screen) == ""
        await c.pilot.press("enter")
        await c.settle()
        assert c.engine.called("arm") == [("arm", "USIM0001", "operator")]

