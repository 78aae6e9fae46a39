"""Dialog: the modal screen every dialog of the console is, answered once and only while on top.

Textual's ``Screen.dismiss`` pops whichever screen is on top, once per call. Keys that arrive in one burst
(a bounced Enter, a held ``y``: the terminal delivers them together) are all handed to the dialog they were
typed at before its first answer has closed it, so each one answered it again: a double Enter on the order
ticket closed the ticket, then the main screen under it (the console went blank). And a dialog that closes
itself (an approval whose order expired) while another covers it closed that one instead.

A modal screen's key bar lists only its own keys (Textual stops the list at the modal), so every dialog lists
Ctrl+K itself: the App's binding is the one that acts (it has priority), this one makes a dialog's key bar show
it. PageUp and PageDown scroll a dialog's body (``.dialog-body``) on a small terminal.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.await_complete import AwaitComplete
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

R = TypeVar("R")


class Dialog(ModalScreen[R]):
    """A modal screen whose first answer is its only one; an answer while another screen covers it is
    not taken (:meth:`dismiss` then returns at once, having done nothing)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # With priority, or a focused Input's own Ctrl+K (delete to the end of the line, not shown) hid it.
        Binding("ctrl+k", "app.kill_switch", "KILL", priority=True, id="dialog-kill-switch",
                tooltip="Kill switch (the App's binding takes the key first: listed so a dialog's key bar shows it)"),
        Binding("pagedown", "scroll_body(1)", "Scroll", show=False, id="dialog-page-down",
                tooltip="Scroll the dialog down"),
        Binding("pageup", "scroll_body(-1)", "Scroll", show=False, id="dialog-page-up",
                tooltip="Scroll the dialog up"),
    ]
    """Ctrl+K listed (the App's binding acts); PageDown and PageUp scroll the body."""

    answered = False
    """Whether the dialog has been answered (it closes, or has closed)."""

    def dismiss(self, result: R | None = None) -> AwaitComplete:
        """Close with ``result`` the first time, while this dialog is the screen on top; else do nothing."""
        if self.answered or not self.is_active:
            return AwaitComplete.nothing()
        self.answered = True
        return super().dismiss(result)

    def action_scroll_body(self, pages: int) -> None:
        """Scroll the dialog's body (``.dialog-body``) a page down (``pages`` 1) or up (-1), when it has one."""
        for body in self.query(".dialog-body"):
            body.scroll_page_down(animate=False) if pages > 0 else body.scroll_page_up(animate=False)
