"""What the order forms (the ticket, the modify form) share: Enter in a field or the ``submit`` button
submits, the other button and Escape cancel (the form returns ``None``); Tab and Shift+Tab move between the
fields before the next key is routed (typed in one burst, ``10<Tab><Tab>398.5`` made the quantity 10398.5);
PageUp and PageDown scroll the form on a small terminal (:class:`~tui_trader.ui.modals.dialog.Dialog`'s keys)."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.widgets import Button, Input

from tui_trader.ui.modals.dialog import Dialog

R = TypeVar("R")


class OrderForm(Dialog[R]):
    """A modal form: subclasses implement :meth:`action_submit` (dismissing with what they return)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="form-next-field"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
                id="form-previous-field"),
    ]
    """Tab and Shift+Tab move focus as priority bindings: the App handles them as they arrive, before it routes
    the next key, which goes to the field focused by then. As the focused field's bindings (Textual's own),
    the keys of a burst that came after a Tab were all routed to the field focused before it."""

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
