"""Dialog: the modal screen every dialog of the console is, answered once and only while on top.

Textual's ``Screen.dismiss`` pops whichever screen is on top, once per call. Keys that arrive in one burst
(a bounced Enter, a held ``y``: the terminal delivers them together) are all handed to the dialog they were
typed at before its first answer has closed it, so each one answered it again: a double Enter on the order
ticket closed the ticket, then the main screen under it (the console went blank). And a dialog that closes
itself (an approval whose order expired) while another covers it closed that one instead.
"""

from __future__ import annotations

from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

R = TypeVar("R")


class Dialog(ModalScreen[R]):
    """A modal screen whose first answer is its only one; an answer while another screen covers it is
    not taken (:meth:`dismiss` then returns at once, having done nothing)."""

    answered = False
    """Whether the dialog has been answered (it closes, or has closed)."""

    def dismiss(self, result: R | None = None) -> AwaitComplete:
        """Close with ``result`` the first time, while this dialog is the screen on top; else do nothing."""
        if self.answered or not self.is_active:
            return AwaitComplete.nothing()
        self.answered = True
        return super().dismiss(result)
