"""LineTable over a lazy row model: only the rows it compares or draws are formatted."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget

from tests.ui.conftest import running
from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import OrderTicket
from tui_trader.domain.portfolio import Position
from tui_trader.ui.demo import FROZEN, make_order, normal_state, stalled_state
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.orders import OrdersPane
from tui_trader.ui.widgets.positions import PositionsPane
from tui_trader.ui.widgets.rows import Column, LazyRows, Row

COLUMNS = (Column("Key", 6), Column("Value", 8, right=True))


class TableApp(App[None]):
    """One LineTable, 10 lines high (a header and 9 rows)."""

    CSS = "LineTable { height: 10; }"

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, id="table")


def lazy(values: list[int], made: list[int]) -> LazyRows[int]:
    """Rows ``r<i>`` showing ``values[i]``; each formatting is recorded in ``made``."""
    def row(index: int) -> Row:
        made.append(index)
        return Row(f"r{index}", (f"r{index}", str(values[index])))
    return LazyRows(range(len(values)), row)


async def test_set_rows_when_lazy_then_formats_only_the_rows_on_screen() -> None:
    async with TableApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        made: list[int] = []
        table.set_rows(lazy(list(range(100)), made))
        await pilot.pause()
        assert made
        assert max(made) < 10
        assert len(table.rows) == 100

        made.clear()
        table.set_rows(lazy([v + 1 for v in range(100)], made))  # every value changes
        await pilot.pause()
        assert made
        assert max(made) < 10
        assert table.rows[3].cells == ("r3", "4")


async def test_set_rows_when_scrolled_then_formats_the_rows_now_on_screen() -> None:
    async with TableApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.focus()
        made: list[int] = []
        table.set_rows(lazy(list(range(100)), made))
        await pilot.pause()
        table.action_cursor(60)
        await pilot.pause()
        assert 60 in made
        assert 30 not in made
        assert table.selected is not None
        assert table.selected.key == "r60"


def textual_lines(table: LineTable, crop: Region, *, ours: bool) -> list[tuple[int, list[Segment]]]:
    """``crop`` of ``table`` rendered afresh by its own ``render_lines`` or by Textual's."""
    table._styles_cache.clear()  # both paths share the line cache: each must render every line itself
    strips = table.render_lines(crop) if ours else Widget.render_lines(table, crop)
    return [(strip.cell_length, list(strip)) for strip in strips]


def crops(table: LineTable) -> list[Region]:
    """The whole table, a band of its lines, and a cut through its columns."""
    width, height = table.region.size
    return [Region(0, 0, width, height), Region(0, 2, width, max(height - 4, 1)),
            Region(3, 1, max(width - 10, 1), max(height - 1, 1))]


def same_lines_as_textual(app: App[int]) -> dict[str | None, bool]:
    """Assert every table of the screen renders the lines Textual's styles cache would, byte for
    byte; returns which tables took the plain path (by id)."""
    tables = list(app.screen.query(LineTable))
    assert tables
    for table in tables:
        for crop in crops(table):
            assert textual_lines(table, crop, ours=True) == textual_lines(table, crop, ours=False), (table.id, crop)
    return {table.id: table._plain() for table in tables}


async def test_render_lines_when_panes_live_then_same_lines_as_textual() -> None:
    async with running(normal_state(n_symbols=30, n_positions=20, n_orders=30), size=(200, 60)) as c:
        await c.pilot.press("down", "down")  # a cursor row among the lines
        await c.settle()
        plain = same_lines_as_textual(c.app)
        assert all(plain.values()), plain


async def test_render_lines_when_stale_then_textual_styles_the_lines() -> None:
    async with running(stalled_state(), size=(200, 60)) as c:
        plain = same_lines_as_textual(c.app)
        assert not plain["positions-table"], plain  # the stale pane's text-opacity: Textual's path


class IdTableApp(App[None]):
    """The orders pane's id column beside a value."""

    CSS = "LineTable { height: 5; }"

    def compose(self) -> ComposeResult:
        yield LineTable((Column("Id", 10, cut_start=True), Column("Value", 6)), id="table")


async def test_cut_start_column_when_ids_are_longer_than_it_then_each_id_keeps_the_end_that_tells_it_apart() -> None:
    # Found in a --sim run: every order in the orders pane read "tt7a70c2-…", the part that differs cut off.
    async with IdTableApp().run_test(size=(40, 8)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows([Row(ref, (ref, "x")) for ref in ("tt7a70c2-9", "tt7a70c2-12", "tt7a70c2-123")])
        await pilot.pause()
        lines = [strip.text for strip in table.render_lines(Region(0, 0, 40, 4))]
        assert [line[:17] for line in lines] == [
            "Id         Value ", "tt7a70c2-9 x     ", "…7a70c2-12 x     ", "…a70c2-123 x     "]


def keyed(*keys: str) -> list[Row]:
    """One row per key."""
    return [Row(key, (key, "x")) for key in keys]


async def test_set_rows_when_a_row_sorts_above_the_cursor_then_the_cursor_stays_on_its_row() -> None:
    async with TableApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows(keyed("a", "b", "c"))
        table.action_cursor(1)
        made: list[int] = []

        table.set_rows(keyed("new", "a", "b", "c"))
        assert table.selected is not None
        assert (table.cursor_row, table.selected.key) == (2, "b")
        table.set_rows(lazy([7] * 5, made))  # r0..r4: "b" is gone
        assert table.selected is None
        assert (table.lost_key, table.cursor_row) == ("b", 2)


async def test_action_cursor_when_the_row_is_gone_then_down_selects_the_row_in_its_place_and_up_the_one_above() -> None:
    async with TableApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        for delta, key in ((1, "c"), (-1, "a")):
            table.set_rows(keyed("a", "b", "c"))
            table.cursor_row = 1
            table.set_rows(keyed("a", "c"))
            assert table.selected is None

            table.action_cursor(delta)

            assert table.lost_key is None
            assert table.selected is not None
            assert table.selected.key == key


async def test_cancel_when_a_new_order_sorts_above_the_cursor_then_cancels_the_order_under_it() -> None:
    # Index-based, the cursor stayed on row 0: the new order slid under it and x cancelled tt-999.
    async with running(normal_state()) as c:
        await c.pilot.press("3")
        await c.settle()
        pane = c.app.main.query_one(OrdersPane)
        target = pane.selected_ref
        assert target is not None
        new = make_order("tt-999", OrderTicket("MSFT", Side.SELL, 50, OrderType.LMT, limit_price=500.0),
                         OrderStatus.SUBMITTED, FROZEN + timedelta(seconds=1))
        c.engine.state = replace(c.engine.state, orders=(*c.engine.state.orders, new))
        await c.pull()
        assert pane.table.rows[0].key == "tt-999"

        await c.pilot.press("x")
        await c.settle(3)

        assert c.engine.called("cancel") == [("cancel", target)]


async def test_cancel_when_the_order_under_the_cursor_left_the_list_then_cancels_nothing() -> None:
    async with running(normal_state()) as c:
        await c.pilot.press("3")
        await c.settle()
        pane = c.app.main.query_one(OrdersPane)
        target = pane.selected_ref
        c.engine.state = replace(c.engine.state, orders=tuple(o for o in c.engine.state.orders
                                                             if o.order_ref != target))
        await c.pull()

        await c.pilot.press("x")
        await c.settle(3)

        assert not c.engine.called("cancel")
        assert f"{target} left the list" in str(pane.border_subtitle)
        await c.pilot.press("down")  # the order that took its place, row 0
        in_place = pane.table.rows[0].key
        assert pane.selected_ref == in_place
        await c.pilot.press("x")
        await c.settle(3)
        assert c.engine.called("cancel") == [("cancel", in_place)]


async def test_positions_when_a_symbol_sorts_above_the_cursor_then_the_selected_symbol_stays() -> None:
    async with running(normal_state()) as c:
        await c.pilot.press("2", "down")
        await c.settle()
        pane = c.app.main.query_one(PositionsPane)
        symbol = pane.selected_symbol
        assert symbol is not None
        account = c.engine.state.account
        new = Position("AAA", 10, 5.0, 5.0)
        c.engine.state = replace(c.engine.state, account=replace(
            account, positions={**account.positions, "AAA": new}))
        await c.pull()

        assert pane.selected_symbol == symbol
