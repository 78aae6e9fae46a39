"""ExportTraceModal: where to write an order trace (JSON, or CSV when the path ends in .csv)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui_trader.ui.modals.dialog import Dialog


class ExportTraceModal(Dialog[Path | None]):
    """A path prefilled with the default (next to the journal); Enter writes, Escape cancels.

    Args:
        default: The suggested file (JSON next to the journal).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel-export", tooltip="Do not export"),
        Binding("f2", "use('json')", "JSON", id="export-json", tooltip="Write JSON (changes the suffix)"),
        Binding("f3", "use('csv')", "CSV", id="export-csv", tooltip="Write CSV (changes the suffix)"),
    ]
    """Escape cancels; F2 / F3 switch the file between JSON and CSV."""

    def __init__(self, default: Path) -> None:
        super().__init__(id="export-trace-modal")
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog"):
            yield Label("Export the order trace", classes="dialog-title")
            yield Static("JSON keeps every field; a path ending in .csv writes one row per step. "
                         "F2: JSON · F3: CSV · Enter: write", id="export-hint")
            yield Input(str(self.default), id="export-path")
            yield Label("", id="export-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Write", id="write", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_use(self, fmt: str) -> None:
        """Switch the path's suffix to ``fmt``."""
        box = self.query_one(Input)
        box.value = str(Path(box.value.strip() or str(self.default)).with_suffix(f".{fmt}"))

    def action_cancel(self) -> None:
        """Close without exporting."""
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._write()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "write":
            self._write()
        else:
            self.dismiss(None)

    def _write(self) -> None:
        text = self.query_one(Input).value.strip()
        if not text:
            self.query_one("#export-error", Label).update("Type a file path.")
            return
        self.dismiss(Path(text))
