"""Pane: a titled box that says how old its data is and dims when the data is stale."""

from __future__ import annotations

from textual.containers import Vertical
from textual.reactive import reactive

from tui_trader.ui.format import age
from tui_trader.ui.widgets.line_table import LineTable


class Pane(Vertical):
    """Base of the main screen's panes.

    Subclasses compose their content and implement ``show``; the screen calls ``set_age`` on
    every refresh so the border's subtitle always tells the age of what is drawn.
    """

    ALLOW_MAXIMIZE = True

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
            self.border_subtitle = subtitle

    def watch_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")
        for table in self.query(LineTable):
            table.stale = stale
