"""KeyFooter: the footer that always shows Ctrl+K and help first, and drops other keys to fit; the main screen's,
the trace's and the dialogs' that have a key bar of their own (the approval, the order ticket).

Textual's footer shows the keys in the order it finds them (the focused widget's, then the
screen's, then the app's) and cuts what does not fit: at 80 columns the kill switch, the reset
and the help were the part cut off.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS = ("kill_switch", "help")
"""Shown first, at any width: the kill switch and the key that lists every other key."""

RANK = ("cancel_all", "flatten", "toggle_reducing", "cancel_order", "new_order", "reset_kill",
        "quit_console", "pause_strategy", "filter", "maximize_pane")
"""The other keys, most important first: the last ones are dropped first when the width runs out
(keys not named here come after them, in the order they were found)."""


def action_of(key: FooterKey) -> str:
    """The key's action without its namespace: a dialog's ``app.kill_switch`` is the App's ``kill_switch``."""
    return key.action.rpartition(".")[2]


def key_width(key: FooterKey) -> int:
    """Cells a footer key takes: one space before the key, one between, one after its description (the paddings
    of Textual's footer keys, not compact)."""
    return cell_len(key.key_display) + cell_len(key.description) + 3


def fit_keys(keys: list[FooterKey], width: int) -> list[FooterKey]:
    """The keys to show in ``width`` cells: ``ALWAYS`` first, then the others in their order, as many of the
    most important as fit (the ranking stops at the first that does not fit: no small key jumps a big one)."""
    first = sorted((k for k in keys if action_of(k) in ALWAYS), key=lambda k: ALWAYS.index(action_of(k)))
    others = [k for k in keys if action_of(k) not in ALWAYS]
    ranked = sorted(others, key=lambda k: RANK.index(action_of(k)) if action_of(k) in RANK else len(RANK))
    room = width - sum(key_width(k) for k in first)
    kept: set[int] = set()
    for key in ranked:
        room -= key_width(key)
        if room < 0:
            break
        kept.add(id(key))
    return [*first, *(k for k in others if id(k) in kept)]


class KeyFooter(Footer):
    """The key bar: Ctrl+K and ``?`` first, then as many other keys as the width holds, most important kept."""

    _composed_for = 0
    """The width the keys were last fitted to."""

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        palette = [w for w in widgets if w.has_class("-command-palette")]
        keys = [w for w in widgets if isinstance(w, FooterKey) and w not in palette]
        if len(keys) + len(palette) != len(widgets):  # grouped keys: none here, show them as Textual does
            yield from widgets
            return
        self._composed_for = self.size.width or self.app.size.width
        # The palette key is docked right, with a border and a padding of its own.
        width = self._composed_for - sum(key_width(w) + 2 for w in palette if isinstance(w, FooterKey))
        for key in fit_keys(keys, width):
            key.set_class(action_of(key) == "kill_switch", "-kill")
            yield key
        yield from palette

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._composed_for:
            self.call_after_refresh(self.recompose)
