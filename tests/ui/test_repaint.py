"""What a steady-state update repaints: the lines that changed, and nothing that becomes cyclic garbage.

Each test reads the updates the compositor hands to the (headless) driver, encoded as a real
terminal driver would, so a line that changed but was not repainted fails the test as surely
as a line repainted for nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from textual.app import App, ComposeResult
from textual.strip import Strip

from tui_trader.ui.strip_cycles import install
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, Row

from .conftest import Updates

COLUMNS = (Column("Key", 6), Column("Value", 8, right=True))


class BoxPane(Pane):
    """A pane around one LineTable."""

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, id="table")


class PaneApp(App[None]):
    """One pane 12 lines high at the top of the screen: its table shows a header and 9 rows."""

    CSS = "Pane { border: round white; height: 12; }"

    def compose(self) -> ComposeResult:
        yield BoxPane("Box", "1", id="box")


def rows(n: int, value: int = 0) -> list[Row]:
    """``n`` rows ``r<i>`` showing ``value + i``."""
    return [Row(f"r{i}", (f"r{i}", str(value + i))) for i in range(n)]


async def test_pane_age_when_it_changes_then_only_its_bottom_border_line_is_repainted() -> None:
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        pane = pilot.app.query_one(BoxPane)
        pane.table.set_rows(rows(5))
        pane.set_age(0.4, stale=False)
        await pilot.pause()
        updates = Updates(pilot.app)

        pane.set_age(12.0, stale=False, note="5 working")
        await pilot.pause()

        assert updates.touched() == {11}  # the pane's bottom border, nothing above it
        assert "5 working · age 12s" in "".join(updates.text)


async def test_pane_when_it_turns_stale_then_the_whole_pane_is_repainted() -> None:
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        pane = pilot.app.query_one(BoxPane)
        pane.table.set_rows(rows(5))
        pane.set_age(0.4, stale=False)
        await pilot.pause()
        updates = Updates(pilot.app)

        pane.set_age(30.0, stale=True, note="STALLED")  # dimmed rows: every line changes
        await pilot.pause()

        assert set(range(12)) <= updates.touched()
        assert "STALLED · age 30s" in "".join(updates.text)


async def test_table_when_a_row_is_added_below_the_fold_then_only_the_header_is_repainted() -> None:
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows(rows(20))
        await pilot.pause()
        updates = Updates(pilot.app)

        table.set_rows(rows(21))
        await pilot.pause()

        assert updates.touched() == {1}  # the header line (inside the pane's top border)
        assert "1-9/21" in "".join(updates.text)


async def test_table_when_a_row_is_added_on_screen_then_its_line_and_the_header_are_repainted() -> None:
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows(rows(3))
        await pilot.pause()
        updates = Updates(pilot.app)

        table.set_rows(rows(4))
        await pilot.pause()

        assert updates.touched() == {1, 5}  # header, then the fourth row (header on line 1)
        assert "r3" in "".join(updates.text)


async def test_table_when_rows_are_removed_then_their_lines_are_blanked() -> None:
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows(rows(4))
        await pilot.pause()
        updates = Updates(pilot.app)

        table.set_rows(rows(2))
        await pilot.pause()

        assert updates.touched() == {1, 4, 5}
        assert "r2" not in "".join(updates.text)


@contextmanager
def saved_garbage() -> Iterator[list[object]]:
    """The cyclic garbage found while the block runs (the collector keeps it for inspection)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def reaches_itself(start: object, hops: int = 4) -> bool:
    """Whether ``start`` is on a reference cycle of at most ``hops`` references (strip → its
    divide cache → the cached list → the strip is three)."""
    frontier, seen = gc.get_referents(start), set[int]()
    for _ in range(hops):
        if any(o is start for o in frontier):
            return True
        seen.update(id(o) for o in frontier)
        frontier = [r for o in frontier for r in gc.get_referents(o) if id(r) not in seen]
    return False


async def test_repainted_lines_when_replaced_then_leave_no_strip_cycles() -> None:
    install()
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows(rows(9))
        await pilot.pause()
        with saved_garbage() as garbage:
            for value in range(1, 6):  # every row changes five times
                table.set_rows(rows(9, value))
                await pilot.pause()
        # Only a strip that reaches itself is the defect: the garbage may also hold the strips of an
        # earlier test's app that lingered until this block (CI saw a 51-cell one in a 40-cell app).
        assert not [o for o in garbage if isinstance(o, Strip) and reaches_itself(o)]


def test_divide_when_installed_then_cuts_as_textual_does() -> None:
    install()
    strip = Strip.join([Strip.blank(4), Strip.blank(6)])
    assert strip.divide([10]) == [strip]
    assert [s.cell_length for s in strip.divide([3, 10])] == [3, 7]
    assert [s.cell_length for s in strip.divide([3, 7, 12])] == [3, 4]  # cuts past the end are dropped


async def test_table_when_repainted_whole_then_rows_drawn_since_they_changed_are_not_built_again() -> None:
    async with PaneApp().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one(LineTable)
        table.set_rows(rows(9))
        await pilot.pause()
        table.set_rows(rows(9, 100))  # every row changes once
        await pilot.pause()
        built: list[str] = []
        build = table._build_row

        def counted(row: Row, cursor: bool, width: int) -> Strip:
            built.append(row.key)
            return build(row, cursor, width)

        table._build_row = counted  # type: ignore[method-assign]
        table.refresh()  # every line painted again, no row changed
        await pilot.pause()
        assert built == []
