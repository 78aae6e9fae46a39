"""LineTable over a lazy row model: only the rows it compares or draws are formatted."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tui_trader.ui.widgets.line_table import Column, LazyRows, LineTable, Row

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
