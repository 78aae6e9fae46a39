"""Pane: a titled box that says how old its data is and dims when the data is stale."""

from __future__ import annotations

from typing import Self

from textual.containers import Vertical
from textual.geometry import Region
from textual.reactive import reactive

from tui_trader.ui.format import age
from tui_trader.ui.widgets.line_table import LineTable


class Pane(Vertical):
    """Base of the main screen's panes.

    Subclasses compose their content and implement ``show``; the screen calls ``set_age`` on
    every refresh so the border's subtitle always tells the age of what is drawn.
    """

    ALLOW_MAXIMIZE = True
    _subtitle_only = False
    """Set while the subtitle changes: :meth:`refresh` repaints its line only."""

    stale: reactive[bool] = reactive(False)
    """Set when the data is not live; the pane gets the ``-stale`` class and dims."""

    def __init__(self, title: str, key: str, *, id: str) -> None:
        super().__init__(id=id)
        self.title = title
        self.hotkey = key
        self.border_title = f"{key} {title}"

    @property
    def table(self) -> LineTable:
        """The pane's table (looked up once: a DOM query on every refresh adds up)."""
        table: LineTable | None = getattr(self, "_table", None)
        if table is None:
            table = self._table = self.query_one(LineTable)
        return table

    def newer_note(self) -> list[str]:
        """What the border says of rows that came above a table the operator scrolled down (none at the top)."""
        newer = self.table.newer_above
        return [f"↑ {newer} newer (Home)"] if newer else []

    def set_age(self, seconds: float | None, *, stale: bool, note: str = "") -> None:
        """Show the data's age (and a state word like STALLED) in the border.

        Under a second the age reads ``<1s``: a new subtitle repaints the whole pane, and live
        data would otherwise change it on every refresh.
        """
        self.stale = stale
        words = [note] if note else []
        words.append("age <1s" if seconds is not None and 0 <= seconds < 1 else f"age {age(seconds)}")
        subtitle = " · ".join(words)
        if subtitle != self.border_subtitle:
            self._subtitle_only = True
            try:
                self.border_subtitle = subtitle
            finally:
                self._subtitle_only = False

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        """Textual's refresh; a new subtitle repaints the bottom border line, not the whole pane.

        Setting ``border_subtitle`` refreshes the whole widget, and a pane is a box of 12-23
        lines around its table: each new age or count in the subtitle (the orders pane's
        working count changes with every order) repainted all of them, where only the bottom
        border line shows it.
        """
        if self._subtitle_only and not regions and not layout and not recompose and self.size:
            regions = (self._bottom_border(),)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _bottom_border(self) -> Region:
        """The bottom border line, in the content coordinates ``refresh`` takes."""
        offset, outer = self.content_offset, self.outer_size
        return Region(-offset.x, outer.height - 1 - offset.y, outer.width, 1)

    def watch_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")
        for table in self.query(LineTable):
            table.stale = stale
