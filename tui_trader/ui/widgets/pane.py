"""Pane: a titled box that says how old its data is and dims when the data is stale."""

from __future__ import annotations

from textual.containers import Vertical
from textual.reactive import reactive

from tui_trader.ui.format import age


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

    def set_age(self, seconds: float | None, *, stale: bool, note: str = "") -> None:
        """Show the data's age (and a state word like STALLED) in the border."""
        self.stale = stale
        words = [note] if note else []
        words.append(f"age {age(seconds)}")
        subtitle = " · ".join(words)
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def watch_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")
        for table in self.query("LineTable"):
            table.stale = stale  # type: ignore[attr-defined]
