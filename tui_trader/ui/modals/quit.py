"""QuitModal: leaving with working orders asks whether to leave or cancel them."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

QuitChoice = Literal["leave", "cancel", "stay"]


class QuitModal(ModalScreen[QuitChoice]):
    """Leave the working orders at the broker, cancel them first, or stay."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stay", "Stay", id="stay", tooltip="Do not quit"),
        Binding("l", "choose('leave')", "Leave working", id="quit-leave", tooltip="Quit; orders stay working"),
        Binding("c", "choose('cancel')", "Cancel & quit", id="quit-cancel", tooltip="Cancel orders, then quit"),
    ]
    """l leaves the orders working, c cancels them, Escape stays."""

    def __init__(self, working: int) -> None:
        super().__init__(id="quit-modal")
        self.working = working

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog -warning"):
            yield Label("Quit with working orders?", classes="dialog-title")
            yield Static(f"{self.working} order(s) are working at the broker. Orders left working stay "
                         "live after the console exits (their brackets protect open positions).")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stay", id="stay", variant="primary")
                yield Button("Leave working (l)", id="leave", variant="warning")
                yield Button("Cancel them (c)", id="cancel", variant="error")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def action_choose(self, choice: QuitChoice) -> None:
        """Close with ``choice``."""
        self.dismiss(choice)

    def action_stay(self) -> None:
        """Do not quit."""
        self.dismiss("stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice: QuitChoice = "leave" if event.button.id == "leave" else (
            "cancel" if event.button.id == "cancel" else "stay")
        self.dismiss(choice)
