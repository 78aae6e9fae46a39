"""The engine alert that says the same thing as one of the console's own: one row for one thing that happened.

The console derives an alert from a trading-state change, and the engine raises its own for most of them: a risk
trigger's REDUCING, the schedule's REDUCING and ACTIVE again, the kill switch engaged or released. Shown apart, each
was two rows. A :class:`Pairing` names the engine alert a console alert goes with; the alerts pane merges the two
into the engine's row (its kind is what notifications and the headless summary count), at the more severe level and
with the words that say the most. A console alert whose engine alert never comes stays a row of its own.

Connection changes need no pairing: the console says only those the engine does not (the start's connect, the link
made; :meth:`~tui_trader.ui.screens.main.MainScreen._connection_alert`), reading the change's ``previous``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import TradingState
from tui_trader.domain.events import TradingStateChanged

PAIR_WINDOW = timedelta(seconds=2)
"""How far apart the two alerts of one happening may be: the engine raises its alert in the same call as the
change it publishes, so they are apart by microseconds (the same instant on a manual clock)."""


@dataclass(frozen=True, slots=True)
class Pairing:
    """The engine alert a console alert goes with: its ``source`` and one of its ``kinds``.

    ``console_words``: the console's text says more than the engine's (``ACTIVE → REDUCING by risk:disconnect:
    broker disconnected for 31s (limit 30s)`` against ``… : reducing only``), and the merged row keeps it.
    """

    source: str
    kinds: frozenset[str]
    console_words: bool = False

    def matches(self, console: Alert, engine: Alert) -> bool:
        """``engine`` is the engine's alert for what ``console`` says."""
        return (engine.source == self.source and engine.kind in self.kinds
                and abs(engine.time - console.time) <= PAIR_WINDOW)

    def merged(self, console: Alert, engine: Alert) -> Alert:
        """The one row for both: the engine's alert at the more severe level, in the words that say more."""
        level = max(console.level, engine.level, key=lambda lvl: lvl.rank)
        return replace(engine, level=level, text=console.text if self.console_words else engine.text)


KILL_ENGAGED = Pairing("kill_switch", frozenset({"kill"}))
KILL_RELEASED = Pairing("kill_switch", frozenset({"kill_reset"}))
SCHEDULE = Pairing("schedule", frozenset({"schedule_reduced", "schedule_restored"}))


def trading_pairing(event: TradingStateChanged) -> Pairing | None:
    """The engine alert that goes with a trading-state change (None for the operator's REDUCING and ACTIVE: the
    console's row is the only one)."""
    if event.state is TradingState.HALTED:
        return KILL_ENGAGED  # the engine's words say what the kill cancelled and what it kept
    if event.previous is TradingState.HALTED:
        return KILL_RELEASED  # "kill switch released by alice: …": the status bar says what trading resumes as
    if event.by == "schedule":
        return SCHEDULE  # the engine's words say until when
    if event.by.startswith("risk:"):
        return Pairing("risk", frozenset({event.by.removeprefix("risk:")}), console_words=True)
    return None
