"""Which strategies a journal leaves paused: each one's pause that no resume followed (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tui_trader.domain.events import OperatorAction
from tui_trader.engine.strategy_runner import paused_in

NAME = "Scripted"
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_paused_in_when_paused_twice_then_paused_since_the_first_and_a_resume_ends_it() -> None:
    def act(minutes: int, action: str, name: str = NAME) -> OperatorAction:
        return OperatorAction(T0 + timedelta(minutes=minutes), "operator", action, name, "", "")

    first = act(0, "pause_strategy")
    other = act(3, "pause_strategy", "macd")

    assert paused_in([first, act(1, "pause_strategy"), other]) == (first, other)
    assert paused_in([first, other, act(4, "resume_strategy")]) == (other,)
    assert paused_in([act(0, "reduce_only", NAME), act(1, "resume")]) == ()
