"""The row model a pane hands its :class:`~tui_trader.ui.widgets.line_table.LineTable`: columns, rows, lazy rows.

A :class:`Row` is text cells with a role per cell (``pos``, ``neg``, ``warn``, …) and one for the row; the
table compares rows to refresh only the lines that changed. :class:`LazyRows` formats a row on first access,
so a pane whose rows all change at every refresh pays only for those on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, overload

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its title, width, alignment and how early it is dropped when narrow.

    Columns with a higher ``priority`` number are dropped first; ``flex`` columns take the
    width left over; ``keep_end`` columns (sparklines) lose their start, not their end, when cut;
    ``cut_start`` columns (ids whose end tells them apart) lose their start behind an ellipsis;
    ``figures`` columns (quantities, prices, money) are never cut: a figure too wide is written
    shorter (:func:`~tui_trader.ui.format.fit_figures`), right-aligned.
    """

    title: str
    width: int
    right: bool = False
    priority: int = 0
    flex: bool = False
    keep_end: bool = False
    cut_start: bool = False
    figures: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One row of text cells with a role per cell and one for the whole row."""

    key: str
    cells: tuple[str, ...]
    roles: tuple[str, ...] = ()
    role: str = ""

    def cell_role(self, index: int) -> str:
        """The role of cell ``index`` ('' when none)."""
        return self.roles[index] if index < len(self.roles) else ""


class LazyRows(Sequence[Row], Generic[T]):
    """A row model whose rows are formatted on first access, each at most once.

    ``items`` are the sources of the rows in display order and ``make`` turns one into its row.
    The table reads only the rows it compares and draws, so rows scrolled out of view cost
    nothing but their place in the list.
    """

    __slots__ = ("_items", "_made", "_make")

    def __init__(self, items: Sequence[T], make: Callable[[T], Row]) -> None:
        self._items = items
        self._make = make
        self._made: list[Row | None] = [None] * len(items)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | Sequence[Row]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = self._made[index]
        if row is None:
            row = self._made[index] = self._make(self._items[index])
        return row
