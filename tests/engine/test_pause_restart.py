"""A strategy's pause survives a restart, and is the operator's action on the record.

Against the simulator and a real journal: an engine pauses (and resumes) a strategy and stops; a second engine
starts on the same journal. The pause and resume are journaled as :class:`OperatorAction` records (who, what,
the strategy, before and after), which the report's ``operator_actions`` section lists, and the second engine
starts with the strategy paused as the first left it, saying so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tui_trader.cli import main
from tui_trader.domain import AlertLevel, Bar, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway
from tui_trader.strategies.base import Signal

from .helpers import eventually, make_config, running, strategy
from .plugin_strategies import Scripted

NAME = "Scripted"


@pytest.fixture(autouse=True)
def _no_signal() -> Iterator[None]:
    Scripted.signal = None
    yield
    Scripted.signal = None


def _entry_bar(engine: Engine) -> None:
    """A completed AAPL bar, newer than anything the warm-up fetched, on which the strategy signals an entry."""
    Scripted.signal = Signal(Side.BUY, "cross up")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    engine.on_bar(Bar("AAPL", at - timedelta(seconds=at.second % 5), 100.0, 100.1, 99.9, 100.0, 100.0, 100.0, 1))


def _report_actions(journal: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, str, str, str]]:
    assert main(["report", "--journal", str(journal), "--section", "operator_actions", "--format", "json"]) == 0
    return [(a["who"], a["action"], a["why"], a["before"], a["after"])
            for a in json.loads(capsys.readouterr().out)["operator_actions"]]


async def test_restart_when_a_strategy_is_paused_then_it_starts_paused_and_says_since_when_and_by_whom(
        sim: SimGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Arrange: the operator pauses the strategy; the engine stops.
    config = make_config(tmp_path, strategies=(strategy(f"engine.plugin_strategies:{NAME}"),))
    async with running(sim, config) as (first, _):
        first.pause_strategy(NAME, True)
        paused_at = first.now()
    # Act: a second engine starts on the same journal.
    async with running(sim, config) as (second, events):
        await eventually(lambda: "AAPL" in second.market.quotes, what="first quote")
        _entry_bar(second)
        # Assert: still paused (its entry signal opened nothing), and said at start with since when and by whom.
        assert [s.paused for s in second.snapshot().strategies] == [True]
        assert second.orders.orders == {}
        said = [e.alert for e in events.drain() if isinstance(e, AlertRaised)
                and e.alert.kind == "strategy_pause_restored"]
        local = paused_at.astimezone(ZoneInfo(config.time_zone))
        assert [(a.level, a.text) for a in said] == [
            (AlertLevel.WARNING, f"paused before the restart, still paused: {NAME} paused (since "
                                 f"{local:%Y-%m-%d %H:%M:%S %Z}, by operator)")]
    assert await asyncio.to_thread(_report_actions, config.journal_path, capsys) == [
        ("operator", "pause_strategy", NAME, "running", "paused")]


async def test_restart_when_a_strategy_was_paused_then_resumed_then_it_runs_and_both_are_on_the_record(
        sim: SimGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, strategies=(strategy(f"engine.plugin_strategies:{NAME}"),))
    async with running(sim, config) as (first, _):
        first.pause_strategy(NAME, True)
        first.pause_strategy(NAME, False)

    async with running(sim, config) as (second, events):
        assert [s.paused for s in second.snapshot().strategies] == [False]
        assert not [e for e in events.drain() if isinstance(e, AlertRaised)
                    and e.alert.kind == "strategy_pause_restored"]
    assert await asyncio.to_thread(_report_actions, config.journal_path, capsys) == [
        ("operator", "pause_strategy", NAME, "running", "paused"),
        ("operator", "resume_strategy", NAME, "paused", "running")]

