"""ResetKillModal: releasing the latched kill switch needs a typed reason (and a same-day confirm)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Static

from tui_trader.engine.handle import EngineHandle
from tui_trader.ui.modals.dialog import Dialog

MIN_REASON = 8


class ResetKillModal(Dialog[str | None]):
    """Ask why trading may resume; call ``reset_kill`` and report a refusal in place."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel-reset", tooltip="Keep the kill switch engaged"),
    ]
    """Escape keeps the kill switch engaged."""

    def __init__(self, handle: EngineHandle, kill_reason: str, unprotected: tuple[str, ...] = ()) -> None:
        super().__init__(id="reset-kill-modal")
        self.handle = handle
        self.kill_reason = kill_reason
        self.unprotected = unprotected
        """The open positions no protective stop covers at the broker
        (:func:`~tui_trader.ui.modals.quit.unprotected_positions`): the kill cancelled their stops."""

    def compose(self) -> ComposeResult:
        with Vertical(id="reset-dialog", classes="dialog -warning"):
            yield Label("Reset the kill switch", classes="dialog-title")
            yield Static(f"Engaged because: {self.kill_reason or 'no reason recorded'}\n"
                         "Trading resumes in the state before the kill. Type why it is safe now.")
            if self.unprotected:
                yield Static(f"No protective stop works at the broker for: {', '.join(self.unprotected)}. "
                             "The reset does not put stops back: they stay open without one, and strategies "
                             "trade again beside them.", id="reset-unprotected")
            yield Input(placeholder=f"reason (at least {MIN_REASON} characters)", id="reset-reason")
            yield Checkbox("Same day: I confirm trading resumes today", id="confirm-same-day")
            yield Label("", id="reset-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep halted", id="cancel", variant="primary")
                yield Button("Reset", id="reset", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#reset-reason", Input).focus()

    def action_cancel(self) -> None:
        """Close without resetting."""
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.attempt()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.attempt() if event.button.id == "reset" else self.dismiss(None)

    def attempt(self) -> None:
        """Reset with the typed reason; show the engine's refusal instead of closing."""
        reason = self.query_one("#reset-reason", Input).value.strip()
        error = self.query_one("#reset-error", Label)
        if len(reason) < MIN_REASON:
            error.update(f"Type a reason of at least {MIN_REASON} characters.")
            return
        same_day = self.query_one("#confirm-same-day", Checkbox).value
        try:
            self.handle.reset_kill(reason, by="operator", confirm_same_day=same_day)
        except Exception as exc:  # the engine refuses with a TraderError; show any refusal
            error.update(f"Refused: {getattr(exc, 'message', str(exc))}")
            return
        self.dismiss(reason)
