"""The schedule's trading-state changes are one row each: the engine's alert (why, and until when) merged with the
console's own row for the change, as a risk trigger's are (alert_pairs: SCHEDULE)."""

from __future__ import annotations

from tui_trader.domain.alerts import Alert
from tui_trader.domain.enums import AlertLevel, TradingState
from tui_trader.domain.events import AlertRaised, TradingStateChanged
from tui_trader.ui.demo import FROZEN, normal_state
from tui_trader.ui.scripted_engine import ScriptedEngine

from .conftest import running
from .test_alert_rows import rows

CLOSED = "market closed until the open at Wed 09:30 EST"
REDUCED = f"REDUCING: {CLOSED}; only orders that reduce exposure pass until Wed 09:30 EST, then ACTIVE again once " \
    "reconciled"
BACK = "reconnected and reconciled cleanly after the window"


async def test_alert_rows_when_the_schedule_reduces_and_restores_then_one_row_each_in_the_engines_words() -> None:
    events = [TradingStateChanged(FROZEN, TradingState.ACTIVE, TradingState.REDUCING, "schedule", CLOSED),
              AlertRaised(FROZEN, Alert(AlertLevel.WARNING, "schedule", REDUCED, FROZEN, kind="schedule_reduced")),
              TradingStateChanged(FROZEN, TradingState.REDUCING, TradingState.ACTIVE, "schedule", BACK),
              AlertRaised(FROZEN, Alert(AlertLevel.INFO, "schedule", f"ACTIVE again: {BACK}", FROZEN,
                                        kind="schedule_restored"))]
    async with running(engine=ScriptedEngine(normal_state(), start_events=events)) as c:
        await c.pull()
        said = [(a.level, a.source, a.text) for a in rows(c.app) if a.source in ("console", "schedule")]
    assert said == [(AlertLevel.WARNING, "schedule", REDUCED),
                    (AlertLevel.WARNING, "schedule", f"ACTIVE again: {BACK}")]  # the console's level, the more severe
