"""ErrorModal: a failure the operator must see; worker crashes also halt trading."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from tui_trader.ui.modals.dialog import Dialog


class ErrorModal(Dialog[None]):
    """Title, message, and what the console did about it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close-error", tooltip="Close this message"),
    ]
    """Escape closes the message."""

    def __init__(self, title: str, message: str, *, halted: bool = False) -> None:
        super().__init__(id="error-modal")
        self.error_title = title
        self.message = message
        self.halted = halted

    def compose(self) -> ComposeResult:
        with Vertical(id="error-dialog", classes="dialog -error"):
            yield Label(self.error_title, id="error-title", classes="dialog-title")
            yield Static(self.message, id="error-message")
            if self.halted:
                yield Label("Trading was HALTED (kill switch engaged). Reset it once the cause is fixed.",
                            id="error-halted")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def action_close(self) -> None:
        """Close the message."""
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
