"""The journal's write connection: plain ``sqlite3`` on the event loop's own thread.

Why not aiosqlite for writes: every aiosqlite call is a hop to its thread and back, and the
order path waits for a SENDING commit before sending an order that waited for approval (one sent
as it is gated appends to the sending log instead, :mod:`tui_trader.store.sending`). On a loaded machine that hop cost
1–3 ms (more under a tick storm: the writer thread must win the GIL back from the loop), most
of the engine's tick-to-order latency. A WAL commit with ``synchronous=NORMAL`` is a ``write``
to the WAL file without ``fsync`` — tens of microseconds — and, once it returns, survives a
SIGKILL of the process (the OS holds the page; only a power loss can lose it, the same
guarantee the aiosqlite connection had with the same setting).

Two things could still stall the loop, and neither is allowed to:

- another writer holding the file's write lock (``tui-trader kill`` from a shell, a reader
  upgrading): ``busy_timeout`` is 0, so :meth:`LoopWriter.commit` returns ``False`` at once
  and the journal retries that batch through aiosqlite's thread, which may wait;
- a checkpoint (it ``fsync``\\ s): automatic checkpoints are off on this connection; the
  journal checkpoints through aiosqlite's thread instead.

:class:`CommitCost` predicts how long a commit on it takes: the journal sizes its write slices by it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from tui_trader.store.derive import Row

_LOCKED = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class CommitCost:
    """How long a commit of ``rows`` rows takes: ``fixed + per_row * rows``, fitted to recent commits.

    A least-squares fit over the last few dozen commits (exponentially weighted). Small
    transactions cost more per row than the per-row figure alone says (each one begins, rewrites
    the same hot pages to the WAL and commits), hence the fixed part. A commit slowed by
    something else (the process preempted) counts at most double its prediction; while the
    commits' sizes hardly vary, only ``per_row`` is refitted.
    """

    DECAY = 0.95

    def __init__(self, fixed: float = 150e-6, per_row: float = 4e-6) -> None:
        self.fixed, self.per_row = fixed, per_row
        self._sums = [0.0] * 5  # weight, Σn, Σt, Σn², Σnt

    def __call__(self, rows: int) -> float:
        """Predicted seconds for a commit of ``rows`` rows."""
        return self.fixed + self.per_row * rows

    def add(self, rows: int, seconds: float) -> None:
        """Learn from one commit."""
        t = min(seconds, 2 * self(rows))
        sums = self._sums
        for i, value in enumerate((1.0, rows, t, rows * rows, rows * t)):
            sums[i] = sums[i] * self.DECAY + value
        w, sn, st, snn, snt = sums
        spread = snn * w - sn * sn
        if spread > 4 * w * w:  # sizes vary by more than ±2 rows: fit both terms
            per_row = (snt * w - sn * st) / spread
            fixed = (st - per_row * sn) / w
        else:
            per_row, fixed = (st - self.fixed * w) / sn if sn else self.per_row, self.fixed
        self.per_row = min(max(per_row, 0.5e-6), 100e-6)
        self.fixed = min(max(fixed, 10e-6), 1e-3)


class LoopWriter:
    """Commits rows in one short transaction on the calling thread; never waits for a lock.

    Args:
        path: The journal file (already created and migrated, in WAL mode).
    """

    def __init__(self, path: Path) -> None:
        # isolation_level=None: no implicit transactions; each commit is an explicit BEGIN … COMMIT.
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=0")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")

    def commit(self, rows: Iterable[Row]) -> bool:
        """Execute ``rows`` in order and commit them as one transaction (a single row: one autocommit statement).

        Returns:
            ``True`` when committed; ``False`` when another connection holds the write lock
            (nothing was written: retry elsewhere).

        Raises:
            sqlite3.Error: the write failed (rolled back, nothing written).
        """
        rows = list(rows)
        if len(rows) == 1:
            return self._execute_alone(*rows[0])
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                return False
            raise
        try:
            for sql, params in rows:
                self._conn.execute(sql, params)
            self._conn.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.OperationalError) and _locked(exc):
                return False
            raise
        return True

    def _execute_alone(self, sql: str, params: tuple[object, ...]) -> bool:
        """One statement outside ``BEGIN … COMMIT``: SQLite runs it as its own transaction.

        One call into SQLite instead of three: the SENDING record before each send is one row.
        """
        try:
            self._conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            self._rollback()
            if _locked(exc):
                return False
            raise
        return True

    def close(self) -> None:
        """Close the connection (a transaction is never left open between commits)."""
        self._conn.close()

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


class ReadOnlyWriter:
    """The write side of a journal opened read-only (``tui-trader report``): it opens nothing and
    refuses every commit, so a reader beside a live engine never writes to its file nor takes its
    write lock.

    Args:
        path: The journal file (named in the refusal).
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def commit(self, rows: Iterable[Row]) -> bool:
        """Refuse: nothing is written.

        Raises:
            sqlite3.OperationalError: always.
        """
        raise sqlite3.OperationalError(f"journal {self._path} is open read-only: nothing is written")

    def close(self) -> None:
        """Nothing to close."""


def _locked(exc: sqlite3.OperationalError) -> bool:
    # sqlite_errorcode is the extended code (SQLITE_BUSY_SNAPSHOT, …): its low byte is the primary one.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _LOCKED
