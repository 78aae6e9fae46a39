"""HelpScreen: every key binding with its id and what it does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.rows import Column, Row

COLUMNS = (Column("Key", 12), Column("Id", 18, priority=1), Column("What it does", 30, flex=True))


def binding_rows(bindings: Iterable[BindingType]) -> list[Row]:
    """One row per binding that has an id (aliases without an id are skipped)."""
    rows = []
    for binding in bindings:
        if isinstance(binding, Binding) and binding.id:
            text = binding.tooltip or binding.description
            rows.append(Row(binding.id, (binding.key_display or binding.key, binding.id, text)))
    return rows


class HelpScreen(ModalScreen[None]):
    """The bindings of the app and the main screen, plus how modals answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1", "close", "Close", id="close-help", tooltip="Close the help"),
    ]
    """Escape, ? or F1 close the help."""

    def __init__(self, bindings: list[BindingType]) -> None:
        super().__init__(id="help-screen")
        self.bindings_shown = bindings

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label("Keys", classes="dialog-title")
            table = LineTable(COLUMNS, id="help-table")
            yield table
            yield Label("Approval: y approve · n / Esc reject (focus starts on Reject) · "
                        "ctrl+p: command palette (cancel order #id, trace order #id, flatten SYMBOL, "
                        "send test notification, …)", id="help-notes")

    def on_mount(self) -> None:
        table = self.query_one(LineTable)
        table.set_rows(binding_rows(self.bindings_shown))
        table.focus()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
