"""The migration runner on real journal files written as older versions wrote them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from tests.store.old_journal import shared_ref_events, write_old_journal
from tests.store.test_journal import CERTAIN_ONLY, SHARED_TIMES
from tui_trader.store import fill_owners
from tui_trader.store.schema import BACKFILLED, MIGRATIONS, SCHEMA_VERSION, migrate

WITH_SQL = (*MIGRATIONS[:BACKFILLED - 1], "CREATE INDEX fills_perm_id ON fills(perm_id);")
"""This version's schema but with SQL in the migration that has a data step (the backfill)."""


def _file(path: Path) -> tuple[int, set[str], dict[str, int | None]]:
    """The file's version, its index names and each fill's permanent id."""
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        perms = dict(conn.execute("SELECT exec_id, perm_id FROM fills").fetchall())
    conn.close()
    return version, indexes, perms


async def test_migrate_when_a_data_step_has_sql_then_its_sql_runs_before_its_data_step(tmp_path: Path) -> None:
    # Arrange: a journal of schema 4; the step to 5 has SQL and a data step (the runner ran only the data step).
    path = tmp_path / "old.sqlite"
    write_old_journal(path, BACKFILLED - 1, shared_ref_events(SHARED_TIMES))
    # Act
    async with aiosqlite.connect(path) as conn:
        version = await migrate(conn, WITH_SQL, {BACKFILLED: fill_owners.backfill})
    # Assert
    written, indexes, perms = _file(path)
    assert (version, written, perms) == (BACKFILLED, BACKFILLED, CERTAIN_ONLY)
    assert "fills_perm_id" in indexes


async def test_migrate_when_a_data_step_fails_then_its_sql_undone_and_the_file_at_the_version_before(
        tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "old.sqlite"
    write_old_journal(path, BACKFILLED - 1, shared_ref_events(SHARED_TIMES))
    before = _file(path)

    async def failing(conn: aiosqlite.Connection) -> None:
        await fill_owners.backfill(conn)
        raise RuntimeError("cut short")

    # Act
    async with aiosqlite.connect(path) as conn:
        with pytest.raises(RuntimeError, match="cut short"):
            await migrate(conn, WITH_SQL, {BACKFILLED: failing})
    # Assert: neither the index nor a permanent id; the next open migrates it
    assert _file(path) == before
    assert "fills_perm_id" not in before[1]
    async with aiosqlite.connect(path) as conn:
        assert await migrate(conn) == SCHEMA_VERSION
    assert _file(path)[::2] == (SCHEMA_VERSION, CERTAIN_ONLY)
