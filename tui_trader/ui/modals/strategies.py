"""StrategyModal: pick a strategy to pause or resume."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tui_trader.engine.snapshots import StrategyStatus
from tui_trader.ui.modals.dialog import Dialog


class StrategyModal(Dialog[tuple[str, bool] | None]):
    """Returns (name, paused) for the chosen strategy, with its pause state flipped."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel-strategy", tooltip="Change nothing"),
    ]
    """Escape changes nothing."""

    def __init__(self, strategies: tuple[StrategyStatus, ...]) -> None:
        super().__init__(id="strategy-modal")
        self.strategies = strategies

    def compose(self) -> ComposeResult:
        with Vertical(id="strategy-dialog", classes="dialog"):
            yield Label("Pause or resume a strategy", classes="dialog-title")
            yield Label("Paused: no new entries; its exits still close the positions it opened.", id="strategy-note")
            options = [Option(self._label(s), id=s.name, disabled=bool(s.disabled_reason)) for s in self.strategies]
            yield OptionList(*options, id="strategy-list")

    @staticmethod
    def _label(s: StrategyStatus) -> str:
        if s.disabled_reason:  # not running, and nothing here runs it again: not offered
            return f"{s.name:<18} {', '.join(s.symbols):<20} DISABLED: {s.disabled_reason}"
        state = "PAUSED → resume" if s.paused else "running → pause"
        return f"{s.name:<18} {', '.join(s.symbols):<20} {state}"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = next(s for s in self.strategies if s.name == event.option.id)
        self.dismiss((chosen.name, not chosen.paused))

    def action_cancel(self) -> None:
        """Close without changes."""
        self.dismiss(None)
