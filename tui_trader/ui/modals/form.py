"""What the order forms (the ticket, the modify form) share: Enter in a field or the ``submit`` button
submits, the other button and Escape cancel (the form returns ``None``)."""

from __future__ import annotations

from typing import TypeVar

from textual.widgets import Button, Input

from tui_trader.ui.modals.dialog import Dialog

R = TypeVar("R")


class OrderForm(Dialog[R]):
    """A modal form: subclasses implement :meth:`action_submit` (dismissing with what they return)."""

    def action_submit(self) -> None:
        """Submit the form (implemented by each form)."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        """Discard the form."""
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit() if event.button.id == "submit" else self.action_cancel()
