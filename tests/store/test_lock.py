"""The journal's writer lock: one engine writes a journal at a time; readers and the kill latch need no lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui_trader.domain import events as ev
from tui_trader.ops.report_cli import open_readonly, readonly_uri
from tui_trader.store import Journal
from tui_trader.store.lock import JournalInUse, JournalLock

T0 = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)


async def test_open_when_another_writer_holds_the_lock_then_fails_at_once_naming_the_journal(
        tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "journal.sqlite"
    first = await Journal.open(path, lock=JournalLock.acquire(path))
    try:
        # Act / Assert
        with pytest.raises(JournalInUse) as caught:
            JournalLock.acquire(path)
        assert str(path) in caught.value.message
        assert "in use by another tui-trader" in caught.value.message
        first.append(ev.OperatorAction(T0, "alice", "note", "still the only writer", "", ""))
        await first.flush()
    finally:
        await first.close()
    # Closed: the lock is free again.
    second = await Journal.open(path, lock=JournalLock.acquire(path))
    await second.close()


async def test_lock_when_held_then_readers_and_the_kill_latch_still_open_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    engine_journal = await Journal.open(path, lock=JournalLock.acquire(path))
    try:
        latch = await Journal.open(path)  # `tui-trader kill` latches while the engine runs: no lock
        latch.append(ev.KillSwitchEngaged(T0, "kill-cli", "out of band"))
        await latch.close()
        reader = await open_readonly(path, readonly_uri(path))
        try:
            assert len(await reader.events(["KillSwitchEngaged"])) == 1
        finally:
            await reader.close()
        with pytest.raises(JournalInUse):  # the latch's close did not let go of the engine's lock
            JournalLock.check(path)
    finally:
        await engine_journal.close()


def test_lock_when_held_by_another_process_then_refused_and_freed_when_it_ends(tmp_path: Path) -> None:
    # Arrange: another process takes the lock and waits.
    path = tmp_path / "journal.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from tui_trader.store.lock import JournalLock
            lock = JournalLock.acquire(Path({str(path)!r}))
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        # Act / Assert
        with pytest.raises(JournalInUse) as caught:
            JournalLock.acquire(path)
        assert f"process {holder.pid}" in caught.value.message
    finally:
        holder.communicate("", timeout=30)
    JournalLock.check(path)  # the process ended: the lock went with it


async def test_open_when_it_fails_then_the_lock_is_let_go(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(Exception, match="not a database"):
        await Journal.open(path, lock=JournalLock.acquire(path))
    JournalLock.check(path)
