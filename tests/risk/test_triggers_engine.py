"""The automatic triggers as the engine performs them, against the simulator over loopback and a real journal.

Each trigger moves to REDUCING or HALTED with an alert and a journal record naming it; these tests
follow a trigger past the operator's reset and past a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.engine.helpers import eventually, make_config, running
from tui_trader.domain import AlertLevel, TradingState
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import ManualClock, SimGateway


@pytest.fixture
def clock() -> ManualClock:
    """The simulator's manual clock."""
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimGateway]:
    """A simulator on an ephemeral port."""
    async with SimGateway(port=0, clock=clock, seed=7, always_open=True) as gw:
        yield gw


def _refuse_writes(journal: Path) -> None:
    """From now on every write to the journal's event log fails, as on a full disk."""
    with sqlite3.connect(journal) as other:
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END")


def _allow_writes(journal: Path) -> None:
    with sqlite3.connect(journal) as other:
        other.execute("DROP TRIGGER refuse")


async def _journal_fails(engine: Engine) -> None:
    """Queue an event and let the journal try to write it."""
    engine.alert(AlertLevel.INFO, "test", "something to write", kind="test")
    assert engine.journal is not None
    with pytest.raises(sqlite3.Error, match="disk full"):
        await engine.journal.flush()


async def test_journal_failure_after_the_operator_reset_a_journal_halt_then_it_halts_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # Once the journal-failure trigger had fired, it never fired again in that run: after the operator
    # freed the disk and reset the kill switch, a second failure left trading ACTIVE with nothing journaled
    # and no alert (DESIGN: a failed write halts trading).
    config = make_config(tmp_path)
    path = config.journal_path
    assert path is not None
    async with running(sim, config) as (engine, events):
        assert engine.journal is not None
        _refuse_writes(path)
        await _journal_fails(engine)
        await eventually(lambda: engine.risk.kill_state.engaged, what="first failure halts")
        _allow_writes(path)
        await engine.journal.flush()
        engine.reset_kill("disk space freed")
        await engine.journal.flush()
        assert engine.trading_state is TradingState.ACTIVE
        events.drain()

        # Act: the disk fills again.
        _refuse_writes(path)
        try:
            await _journal_fails(engine)

            # Assert: halted again by the same trigger, and said.
            assert engine.risk.kill_state.engaged
            assert engine.risk.kill_state.trigger is KillTrigger.JOURNAL_FAILURE
            said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
            assert any(a.kind == "journal_failure" and a.level is AlertLevel.CRITICAL for a in said)
        finally:
            _allow_writes(path)


async def test_reset_while_the_journal_still_fails_then_trading_halts_again(
        sim: SimGateway, tmp_path: Path) -> None:
    # A reset with the disk still full released the halt for good: the reset's own journal write failed
    # and, the trigger having fired once already, nothing halted.
    config = make_config(tmp_path)
    path = config.journal_path
    assert path is not None
    async with running(sim, config) as (engine, _):
        assert engine.journal is not None
        _refuse_writes(path)
        try:
            await _journal_fails(engine)
            await eventually(lambda: engine.risk.kill_state.engaged, what="first failure halts")

            # Act
            engine.reset_kill("thought it was fixed")

            # Assert: the reset's record cannot be written, so trading halts again.
            await eventually(lambda: engine.risk.kill_state.engaged, what="halted again")
            assert engine.risk.kill_state.trigger is KillTrigger.JOURNAL_FAILURE
        finally:
            _allow_writes(path)
