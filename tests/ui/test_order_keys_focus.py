"""x, e and t (cancel, modify, trace the selected order) act on the orders pane's selected order only while that
pane has the focus: the order the operator sees selected, never a cursor left in a pane they are not looking at."""

from __future__ import annotations

import pytest

from tui_trader.ui.modals.modify_order import ModifyOrderModal
from tui_trader.ui.screens.main import MainScreen
from tui_trader.ui.widgets.orders import OrdersPane

from .conftest import Console, running


def said(c: Console) -> list[str]:
    """The notifications' texts, oldest first."""
    return [n.message for n in c.app._notifications]


@pytest.mark.parametrize("key", ["x", "e", "t"])
async def test_order_key_when_another_pane_has_the_focus_then_nothing_done_and_says_where_to_select(
        key: str) -> None:
    # A trader in the positions pane pressing x cancelled the order the orders pane's cursor had been left on.
    async with running() as c:
        await c.pilot.press("3")  # a working order under the orders pane's cursor
        assert c.app.main.query_one(OrdersPane).selected_ref is not None
        await c.pilot.press("2")  # then the positions pane

        await c.pilot.press(key)
        await c.settle(3)

        assert not c.engine.called("cancel")
        assert isinstance(c.app.screen, MainScreen)
        assert said(c)[-1].startswith("No order selected: focus the orders pane (3) and select ")


async def test_modify_and_cancel_keys_when_the_orders_pane_has_the_focus_then_they_act_on_its_selected_order() -> None:
    async with running() as c:
        await c.pilot.press("2", "3")
        ref = c.app.main.query_one(OrdersPane).selected_ref
        assert ref is not None

        await c.pilot.press("e")
        await c.settle()
        assert isinstance(c.app.screen, ModifyOrderModal)
        await c.pilot.press("escape", "x")
        await c.settle(3)

        assert c.engine.called("cancel") == [("cancel", ref)]
