"""QuitModal: leaving with working orders asks whether to leave or cancel them; leaving with open
positions that no stop protects at the broker asks first too (they stay open after the console exits)."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from tui_trader.domain.portfolio import held_words
from tui_trader.domain.portfolio import unprotected_positions as uncovered
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.format import qty
from tui_trader.ui.modals.dialog import Dialog
from tui_trader.ui.widgets.positions import stop_cover

QuitChoice = Literal["leave", "cancel", "stay"]


def unprotected_positions(snapshot: EngineSnapshot) -> tuple[str, ...]:
    """The open positions no protective stop covers at the broker, wholly or in part, as ``AAPL LONG 25``
    (``AAPL LONG 100 (a stop for 10 only)``): the rule the kill reset's dialog and the engine's warning after a
    reset name them by too (:func:`~tui_trader.domain.portfolio.unprotected_positions`)."""
    return uncovered(snapshot.account, qty)


def protected_positions(snapshot: EngineSnapshot) -> tuple[str, ...]:
    """The open positions a working protective stop covers at the broker (wholly or in part), as
    ``AAPL LONG 25``: cancelling the working orders cancels their stops too."""
    out = []
    for p in snapshot.account.positions.values():
        if p.quantity and p.stop_price and stop_cover(snapshot.account, p.symbol) != (0.0, False):
            out.append(held_words(p.symbol, p.quantity, qty))
    return tuple(out)


class QuitModal(Dialog[QuitChoice]):
    """Leave the working orders at the broker, cancel them first, or stay.

    Args:
        working: How many orders are working at the broker.
        unprotected: The open positions with no protective stop working, as the operator reads them
            (``AAPL LONG 25``).
        protected: The open positions a working stop protects (:func:`protected_positions`): cancelling
            the working orders leaves them without it.
        engine_gone: The engine process is gone: the orders and positions are as it last knew them, and
            it cannot cancel them, so that is not offered (Ctrl+K still cancels, out of band).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stay", "Stay", id="stay", tooltip="Do not quit"),
        Binding("l", "choose('leave')", "Leave working", id="quit-leave", tooltip="Quit; orders stay working"),
        Binding("c", "choose('cancel')", "Cancel & quit", id="quit-cancel", tooltip="Cancel orders, then quit"),
    ]
    """l leaves the orders working, c cancels them, Escape stays."""

    def __init__(self, working: int, unprotected: tuple[str, ...] = (), protected: tuple[str, ...] = (),
                 engine_gone: bool = False) -> None:
        super().__init__(id="quit-modal")
        self.working = working
        self.unprotected = unprotected
        self.protected = protected
        self.engine_gone = engine_gone

    @property
    def can_cancel(self) -> bool:
        """Whether "Cancel them" is offered: there are working orders, and an engine to cancel them."""
        return bool(self.working) and not self.engine_gone

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog -warning"):
            yield Label(self._title(), classes="dialog-title")
            if self.working:
                yield Static(self._working_text(), id="quit-working")
            if self.unprotected:
                known = " as last known" if self.engine_gone else ""
                yield Static(f"No protective stop works at the broker{known} for: {', '.join(self.unprotected)}. "
                             "They stay open after the console exits, and nothing watches them.",
                             id="quit-unprotected")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stay", id="stay", variant="primary")
                yield Button("Leave working (l)" if self.working else "Leave open (l)", id="leave", variant="warning")
                if self.can_cancel:
                    yield Button("Cancel them (c)", id="cancel", variant="error")

    def _working_text(self) -> str:
        if self.engine_gone:  # the engine cannot cancel them: only the kill switch's global cancel can
            return (f"{self.working} order(s) were working at the broker as the engine process last knew them (not "
                    "verified). The engine process is gone, so they cannot be cancelled from here; they stay at "
                    "the broker after the console exits. To cancel them first, press Stay, then Ctrl+K: a global "
                    "cancel of every working order on the account, stops included.")
        stops = (f" Cancelling them cancels the stops of {', '.join(self.protected)} too: those stay "
                 "open without one." if self.protected else "")
        return f"{self.working} order(s) are working at the broker. Orders left working stay live after the " \
               f"console exits.{stops}"

    def _title(self) -> str:
        what = [w for w, shown in (("working orders", self.working), ("unprotected positions", self.unprotected))
                if shown]
        return f"Quit with {' and '.join(what)}?"

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``c`` is not shown (nor taken) when there is nothing it could cancel."""
        return not (action == "choose" and parameters == ("cancel",) and not self.can_cancel)

    def action_choose(self, choice: QuitChoice) -> None:
        """Close with ``choice`` (nothing is cancelled without working orders, nor without an engine)."""
        if choice == "cancel" and not self.can_cancel:
            return
        self.dismiss(choice)

    def action_stay(self) -> None:
        """Do not quit."""
        self.dismiss("stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice: QuitChoice = "leave" if event.button.id == "leave" else (
            "cancel" if event.button.id == "cancel" else "stay")
        self.dismiss(choice)
