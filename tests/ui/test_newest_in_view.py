"""The orders and alerts panes keep their newest rows in view, unless the operator scrolled away on purpose
(then their place is kept and the border says newer rows came); Esc clears a filter as its line says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from textual.widgets import Input

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, OrderStatus, OrderType, Side
from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.ui.demo import FROZEN, make_order, normal_state
from tui_trader.ui.widgets.alerts import AlertsPane
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.orders import OrdersPane

from .conftest import Console, running

SIZE = (160, 48)
"""QA's terminal: the orders and alerts tables show 14 rows each."""


def order(n: int, status: OrderStatus = OrderStatus.FILLED) -> Order:
    """Order ``n`` of the session, created ``n`` seconds in (a later one is newer)."""
    ticket = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=200.0, strategy="ema_cross")
    return make_order(f"tt-{n:03d}", ticket, status, FROZEN + timedelta(seconds=n))


async def arrive(c: Console, *orders: Order) -> None:
    """The engine has ``orders`` too; the console draws them."""
    c.engine.state = replace(c.engine.state, orders=(*c.engine.state.orders, *orders))
    await c.pull()


def orders_table(c: Console) -> LineTable:
    return c.app.main.query_one("#orders-table", LineTable)


def on_screen(table: LineTable) -> list[str]:
    """The keys of the rows drawn in the table's body."""
    top = table.scroll_offset.y
    return [row.key for row in table.rows[top:top + table.size.height - 1]]


async def session_of_settled_orders(c: Console, count: int = 32) -> None:
    """``count`` filled orders, arriving a few per refresh as a session's do."""
    for start in range(0, count, 8):
        await arrive(c, *(order(n) for n in range(start, min(start + 8, count))))


async def test_orders_when_new_orders_keep_coming_then_the_newest_and_the_working_ones_stay_in_view() -> None:
    async with running(normal_state(n_orders=0), size=SIZE) as c:
        await session_of_settled_orders(c)
        await arrive(c, order(40, OrderStatus.SUBMITTED), order(41, OrderStatus.SUBMITTED))

        table = orders_table(c)
        # The cursor followed the session's first order down, and the view with it: rows 19-32 of 34 shown,
        # the two working orders above them.
        assert table.scroll_offset.y == 0
        assert on_screen(table)[:3] == ["tt-041", "tt-040", "tt-031"]
        subtitle = str(c.app.main.query_one(OrdersPane).border_subtitle)
        assert subtitle.startswith("2 working · age")


async def test_orders_when_the_cursors_row_is_pushed_below_the_view_then_none_selected_until_focus_or_a_key() -> None:
    async with running(normal_state(n_orders=0), size=SIZE) as c:
        await arrive(c, order(0))
        await c.pilot.press("3")
        pane = c.app.main.query_one(OrdersPane)
        assert pane.selected_ref == "tt-000"

        await arrive(c, *(order(n) for n in range(1, 16)))

        table = orders_table(c)
        assert table.scroll_offset.y == 0
        assert pane.selected_ref is None  # x would act on a row out of sight
        await c.pull()
        assert "tt-000 below the view: ↑/↓ to select" in str(pane.border_subtitle)
        await c.pilot.press("down")
        assert pane.selected_ref == "tt-015"  # the top row: where the operator looks
        await c.pilot.press("1", "3")
        assert pane.selected_ref == "tt-015"


async def test_orders_when_scrolled_away_then_the_rows_stay_put_and_the_border_counts_the_newer_ones() -> None:
    async with running(normal_state(n_orders=0), size=SIZE) as c:
        await session_of_settled_orders(c)
        await c.pilot.press("3", *["down"] * 16)
        table, pane = orders_table(c), c.app.main.query_one(OrdersPane)
        shown, chosen = on_screen(table), pane.selected_ref
        assert table.scroll_offset.y > 0

        await arrive(c, order(40, OrderStatus.SUBMITTED), order(41, OrderStatus.SUBMITTED), order(42))
        await c.pull()

        assert (on_screen(table), pane.selected_ref) == (shown, chosen)
        assert "↑ 3 newer (Home)" in str(pane.border_subtitle)
        await c.pilot.press("home")
        await c.pull()
        assert on_screen(table)[:2] == ["tt-041", "tt-040"]
        assert "newer" not in str(pane.border_subtitle)


async def test_alerts_when_a_critical_alert_comes_after_many_then_it_is_on_screen() -> None:
    async with running(normal_state(n_orders=0), size=SIZE) as c:
        pane = c.app.main.query_one(AlertsPane)
        for n in range(20):
            pane.add([Alert(AlertLevel.INFO, "engine", f"info {n}", FROZEN)])
            await c.pull()

        pane.add([Alert(AlertLevel.CRITICAL, "kill", "KILL SWITCH engaged", FROZEN)])
        await c.pull()

        table = pane.table
        assert table.scroll_offset.y == 0
        assert table.rows[0].cells[3] == "KILL SWITCH engaged"


async def test_orders_filter_when_escape_in_its_line_then_cleared_every_order_shown_and_no_stale_note() -> None:
    async with running(size=SIZE) as c:
        every = len(orders_table(c).rows)
        await c.pilot.press("3", "down")  # a row that the filter hides
        chosen = c.app.main.query_one(OrdersPane).selected_ref
        await c.pilot.press("slash", *"msft")
        await c.pull()
        assert len(orders_table(c).rows) < every

        await c.pilot.press("escape")
        await c.pull()

        pane = c.app.main.query_one(OrdersPane)
        assert not c.app.main.query_one("#filter-input", Input).display
        assert (pane.filter_text, len(orders_table(c).rows)) == ("", every)
        assert pane.selected_ref == chosen  # back on its row: no "left the list" on the border
        assert "left the list" not in str(pane.border_subtitle)
        assert "filter" not in str(pane.border_subtitle)


async def test_orders_filter_when_applied_then_escape_on_the_pane_clears_it() -> None:
    async with running(size=SIZE) as c:
        every = len(orders_table(c).rows)
        await c.pilot.press("3", "slash", *"msft", "enter")
        await c.pull()
        assert len(orders_table(c).rows) < every
        assert "(Esc clears)" in str(c.app.main.query_one(OrdersPane).border_subtitle)

        await c.pilot.press("escape")
        await c.pull()

        assert len(orders_table(c).rows) == every
