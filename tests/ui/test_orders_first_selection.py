"""The orders pane's first selection is its top row as it is sorted now, not the row on top when it was first drawn.

QA pressed ``3`` then ``e``: the cursor was on the order that topped the pane when it was first drawn (an old
CANCELLED order, before any order worked), followed there by key as working orders sorted above it, and ``e``
said "… is CANCELLED: only an order working at the broker can be modified".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import OrderTicket
from tui_trader.ui.demo import FROZEN, make_order, normal_state
from tui_trader.ui.modals.modify_order import ModifyOrderModal
from tui_trader.ui.widgets.orders import OrdersPane

from .conftest import running


async def test_orders_pane_when_first_focused_then_the_newest_working_order_is_selected() -> None:
    # Arrange: only settled orders when the pane is first drawn
    state = normal_state()
    settled = tuple(o for o in state.orders if o.status.is_final)
    async with running(replace(state, orders=settled)) as c:
        pane = c.app.main.query_one(OrdersPane)
        assert c.app.main.query_one(OrdersPane).table.rows[0].key == max(settled, key=lambda o: o.created_at).order_ref
        ticket = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=200.0, strategy="ema_cross")
        working = make_order("tt-900", ticket, OrderStatus.SUBMITTED, FROZEN - timedelta(seconds=5))
        c.engine.state = replace(c.engine.state, orders=(*settled, working))
        await c.pull()
        # Act
        await c.pilot.press("3")
        await c.settle()
        # Assert
        assert pane.selected_ref == "tt-900"
        await c.pilot.press("e")
        await c.settle()
        assert isinstance(c.app.screen, ModifyOrderModal)
