"""One engine per journal: a second engine, console or headless run on it fails at once, saying so."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui_trader.config import Settings
from tui_trader.domain import Mode
from tui_trader.sim import SimGateway
from tui_trader.store.lock import JournalInUse, JournalLock

from .engines import make_engine


@pytest.fixture
async def sim() -> AsyncIterator[SimGateway]:
    async with SimGateway(port=0, seed=7, always_open=True) as gw:
        yield gw


async def test_second_engine_on_the_same_journal_then_it_fails_to_start_and_the_first_goes_on(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange
    first = make_engine(sim, tmp_path)
    await first.start()
    second = make_engine(sim, tmp_path)
    try:
        # Act / Assert
        with pytest.raises(JournalInUse, match="in use by another tui-trader"):
            await second.start()
        assert second.journal is None  # it read nothing, lapsed nothing, journaled nothing
        assert first.journal is not None
        assert first.journal.failed is None
    finally:
        await first.stop()
    JournalLock.check(tmp_path / "journal.sqlite")  # the first one's stop let go of it


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_TRADER_")} | {"COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "tui_trader.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flags", [("--headless", "--duration", "1"), ()], ids=["headless", "console"])
def test_cli_when_another_tui_trader_writes_the_journal_then_exit_2_naming_it_without_a_traceback(
        tmp_path: Path, flags: tuple[str, ...]) -> None:
    # Arrange: another tui-trader holds the sim journal of this state_dir.
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[sim]\nport = 0\n', encoding="utf-8")
    journal = Settings(mode=Mode.SIM, state_dir=tmp_path).journal_path
    lock = JournalLock.acquire(journal)
    try:
        # Act
        result = run_cli("--sim", "--no-confirm", "--config", str(config), *flags)
    finally:
        lock.release()
    # Assert
    err = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "in use by another tui-trader" in err
    assert journal.name in err
    assert "Traceback" not in result.stderr


def test_check_when_no_engine_ever_ran_with_the_journal_then_creates_nothing_and_still_sees_a_holder(
        tmp_path: Path) -> None:
    # Checking a journal nobody runs left an empty <journal>.lock (and its folder) behind.
    JournalLock.check(tmp_path / "new" / "journal-live.sqlite")
    assert not (tmp_path / "new").exists()
    held = JournalLock.acquire(tmp_path / "journal-live.sqlite")
    try:
        with pytest.raises(JournalInUse, match=f"in use by another tui-trader \\(process {os.getpid()}\\)"):
            JournalLock.check(tmp_path / "journal-live.sqlite")
    finally:
        held.release()
