"""The SQLite journal: an append-only event log plus the tables derived from it.

One file, WAL. Events are batched off the hot path: :meth:`Journal.append` only queues; a
writer task commits them every ``flush_interval_ms`` or every ``batch_size`` events, in slices
of well under a millisecond (each one encodes ahead or commits one transaction) so the event
loop is never held longer. :meth:`Journal.flush` commits everything queued now, in the same slices —
the engine awaits it (or calls :meth:`Journal.commit_now`, which does not yield) so an order is
durably journaled as SENDING before it goes on the wire (or appends its family to the sending
log, :meth:`Journal.commit_orders_now`). Writes go through :class:`~tui_trader.store.writer.LoopWriter`
on the loop's thread (no thread hop on the order path); a batch it cannot write because another
process holds the write lock goes through aiosqlite's thread instead, which also does the reads
and the WAL checkpoints. A failed write keeps the events queued, records the failure and calls
``on_failure`` (the engine halts trading). The reads (orders, fills, events, summaries) are
:class:`~tui_trader.store.queries.JournalQueries`, which :class:`Journal` extends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from tui_trader.domain import events as ev
from tui_trader.domain.orders import Order
from tui_trader.store import sending
from tui_trader.store.codec import codec_json
from tui_trader.store.derive import OUT_OF_BAND_LATCH, UPSERT_KILL, Row, rows_for
from tui_trader.store.lock import JournalLock
from tui_trader.store.queries import JournalQueries
from tui_trader.store.schema import migrate
from tui_trader.store.writer import CommitCost, LoopWriter, ReadOnlyWriter

log = logging.getLogger(__name__)
SLICE_S = 0.0004
"""Time budget of one write slice (it encodes ahead, or commits one transaction) of the writer task and of
:meth:`Journal.flush`; they yield the loop between slices (``journal.max_loop_block_ms`` in bench_journal.py).
A slice can still run over: a garbage collection its allocations trigger lands in it."""
CHECKPOINT_EVERY = 2_000
"""Events written between two WAL checkpoints (run in aiosqlite's thread: a checkpoint fsyncs)."""


class EventSource(Protocol):
    """A lossless event subscription (``tui_trader.engine.bus.Subscription``)."""

    async def get(self) -> ev.Event: ...

    def drain(self, limit: int = ...) -> list[ev.Event]: ...

    @property
    def backlog(self) -> int: ...


class Journal(JournalQueries):
    """Append-only, batched journal of engine events."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, batch_size: int, flush_interval_s: float,
                 on_failure: Callable[[BaseException], None] | None,
                 sending_log_bytes: int = sending.ROTATE_BYTES, *, read_only: bool = False) -> None:
        """``conn`` reads (and writes what waits for a lock); ``read_only``: ``conn`` is a read-only
        connection and nothing else is opened: every write is refused (a report's journal)."""
        super().__init__(conn, path)
        self.read_only = read_only
        self.failed: BaseException | None = None
        self.written = 0
        self._writer_conn = ReadOnlyWriter(path) if read_only else LoopWriter(path)
        self._log = sending.SendingLog(path, sending_log_bytes)
        self._since_checkpoint = 0
        self._commit_cost = CommitCost()
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._on_failure = on_failure
        self._pending: list[ev.Event] = []
        self._encoded: list[list[Row]] = []
        """The rows of ``_pending[:len(_encoded)]``, encoded ahead of their commit."""
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._sub: EventSource | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock_file: JournalLock | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, batch_size: int = 200, flush_interval_ms: float = 50.0,
                   on_failure: Callable[[BaseException], None] | None = None,
                   sending_log_bytes: int = sending.ROTATE_BYTES, lock: JournalLock | None = None) -> Journal:
        """Open (creating and migrating as needed) the journal at ``path`` and start its writer.

        ``sending_log_bytes``: the size past which the journal rotates the sending log it appends to.
        ``lock``: the journal's writer lock (:meth:`JournalLock.acquire`, the engine's), released when
        the journal closes or fails to open.
        """
        try:
            journal = await cls._open(path, batch_size, flush_interval_ms, on_failure, sending_log_bytes)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        journal._lock_file = lock
        return journal

    @classmethod
    async def _open(cls, path: Path, batch_size: int, flush_interval_ms: float,
                    on_failure: Callable[[BaseException], None] | None, sending_log_bytes: int) -> Journal:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(path)
        conn = await aiosqlite.connect(path)
        # Closed on whatever fails or is cancelled before the journal exists to close it: the connection's
        # thread (not a daemon) would keep the process from ever exiting.
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await migrate(conn)
            try:
                await _fold_sending_log(conn, path)
            except sqlite3.Error as exc:  # nothing is lost: the log stays (readers read it), the next open folds it
                await conn.rollback()
                log.warning("journal: sending log not folded into the table at open: %s", exc)
            await _prune_sending(conn)
            journal = cls(conn, path, batch_size, flush_interval_ms / 1000, on_failure, sending_log_bytes)
        except BaseException:
            await conn.close()
            raise
        journal._tasks.append(asyncio.create_task(journal._writer(), name="journal-writer"))
        return journal

    # -- writing ---------------------------------------------------------------------------

    def attach(self, source: EventSource) -> None:
        """Journal every event of ``source``, a lossless bus subscription.

        Example: ``journal.attach(bus.subscribe("journal", lossless=True))``.
        """
        self._sub = source
        self._tasks.append(asyncio.create_task(self._pump(source), name="journal-pump"))

    def append(self, event: ev.Event) -> None:
        """Queue ``event`` for the next batch; never blocks."""
        self._pending.append(event)
        self._wakeup.set()

    @property
    def backlog(self) -> int:
        """Events queued and not yet committed."""
        return len(self._pending) + (self._sub.backlog if self._sub else 0)

    async def flush(self) -> None:
        """Commit everything queued so far.

        Raises:
            aiosqlite.Error: when the write fails (the events stay queued).
        """
        self._take_from_source()
        await self._write_pending()
        if self.failed is not None:
            raise self.failed

    def commit_now(self) -> bool:
        """Commit everything queued so far without leaving the loop's thread, if nothing has to wait.

        The order path's fast way to make SENDING durable: no await, so the order goes on the
        wire in the same step of the loop. When this returns ``False`` nothing is lost: await
        :meth:`flush`, which waits for what was in the way.

        Returns:
            ``True`` when everything queued is committed; ``False`` when another write is in
            progress or another process holds the file's write lock.

        Raises:
            sqlite3.Error: when the write fails (the events stay queued; ``on_failure`` was called).
        """
        if self._lock.locked():
            return False
        self._take_from_source()
        while self._pending:
            try:
                count, rows = self._encode()
                if not self._writer_conn.commit(rows):
                    return False
            except (sqlite3.Error, OSError, ValueError) as exc:
                self._fail(exc)
                raise
            self._committed(count)
        return True

    def commit_orders_now(self, orders: Sequence[Order]) -> bool:
        """Make ``orders`` as they are now the journal's record, on the loop's thread: a line appended
        to the sending log (:mod:`tui_trader.store.sending`).

        The order path's minimal record before the wire: an order family journaled as SENDING
        (with its orderRefs), while the events queued so far, the SENDING ones included, follow
        in the next batch (their ``orders`` rows supersede it). Only for orders no queued event
        is about in an earlier state: until the batch, readers see the orders as written here.

        Returns:
            ``True`` when the record is durable; ``False`` when an earlier write failed: await
            :meth:`flush` instead.

        Raises:
            OSError: when the write fails (``on_failure`` was called); PermissionError, nothing
                written, when the journal is open read-only.
        """
        if self.read_only:
            raise PermissionError(f"journal {self.path} is open read-only: its sending log is not written")
        if self.failed is not None:
            return False
        try:
            self._log.append(orders)
        except (OSError, ValueError) as exc:
            self._fail(exc)
            raise
        return True

    def _take_from_source(self) -> None:
        if self._sub is not None:
            self._pending.extend(self._sub.drain(limit=1_000_000))

    async def save_kill_state(self, state: dict[str, Any], when: datetime, *,
                              seen_out_of_band: Collection[str] | None = None) -> None:
        """Persist the latched kill state now (committed before this returns).

        ``seen_out_of_band``: the engine's save, which never overwrites a kill that ``tui-trader kill`` latched out
        of band (``"out_of_band": true``, engaged) unless its ``engaged_at`` is among these, the latches the engine
        has acted on. Decided in the one statement that writes, so a latch landing from the other process between a
        read and this write is kept too. None (the kill command's own latch): written as it is.
        """
        await self.flush()
        sql = UPSERT_KILL
        params: tuple[Any, ...] = (int(bool(state.get("engaged"))), when.isoformat(), codec_json(state))
        if seen_out_of_band is not None:
            sql += (f" WHERE NOT ({OUT_OF_BAND_LATCH} AND coalesce(CASE WHEN json_valid(kill_state.payload) "
                    "THEN json_extract(kill_state.payload, '$.engaged_at') END, '') "
                    "NOT IN (SELECT value FROM json_each(?)))")
            params += (json.dumps(sorted(seen_out_of_band)),)
        async with self._lock:
            await self._commit_rows([(sql, params)])

    async def save_daily_summary(self, day: str, summary: dict[str, Any]) -> None:
        """Store (or replace) the summary of one trading day."""
        async with self._lock:
            await self._commit_rows([
                ("INSERT OR REPLACE INTO daily_summaries(day, payload) VALUES (?, ?)", (day, codec_json(summary)))
            ])

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close the file; once (closing it again does nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.flush()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._log.close()
            self._writer_conn.close()
            try:
                await self._conn.close()
            finally:
                if self._lock_file is not None:
                    self._lock_file.release()

    async def _pump(self, sub: EventSource) -> None:
        while True:
            self.append(await sub.get())

    async def _writer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if len(self._pending) < self._batch_size:
                await asyncio.sleep(self._interval)
            while self._pending:
                async with self._lock:
                    written = await self._write_slice(SLICE_S)
                if not written:
                    break
                await asyncio.sleep(0)  # one slice at a time: ticks and orders run in between
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                await self._checkpoint()
            if self._log.appending and self._log.size >= self._log.rotate_bytes:
                await self._rotate_log()

    async def _write_pending(self) -> None:
        """Commit everything queued now, in slices of about :data:`SLICE_S`, oldest first.

        The loop runs other work between two slices (a tick, an order's own ``commit_now``), so a
        long backlog never holds it for longer than a slice. Stops at the first failed slice:
        what it had not committed stays queued, in order.
        """
        target = self.written + len(self._pending)
        while self._pending and self.written < target:
            async with self._lock:
                if not await self._write_slice(SLICE_S):
                    return
            if self._pending and self.written < target:
                await asyncio.sleep(0)

    async def _write_slice(self, budget_s: float | None) -> bool:
        """One slice of work on the oldest queued events; ``False`` when the write failed.

        Without a budget: commit up to ``batch_size`` of them in one transaction. With one
        (see :meth:`_plan`): either encode ahead, or commit as many as fit in ``budget_s``
        (at least one) in one transaction.
        """
        try:
            count, rows = self._plan(budget_s)
            if not count:
                return True
            started = time.perf_counter()
            if not self._writer_conn.commit(rows):
                await self._execute_rows(rows)  # another process holds the write lock: wait in the thread
            else:
                self._commit_cost.add(len(rows), time.perf_counter() - started)
        except (sqlite3.Error, OSError, ValueError) as exc:
            await self._report_failure(exc)
            return False
        self._committed(count)
        return True

    def _committed(self, count: int) -> None:
        del self._pending[:count]
        del self._encoded[:count]
        self.written += count
        self._since_checkpoint += count
        self.failed = None

    def _encode(self) -> tuple[int, list[Row]]:
        """Encode (what is not yet) and return the rows of the oldest ``batch_size`` queued events."""
        count = min(len(self._pending), self._batch_size)
        self._encode_ahead(count, None)
        return count, [row for rows in self._encoded[:count] for row in rows]

    def _plan(self, budget_s: float | None) -> tuple[int, list[Row]]:
        """What one slice does: ``(0, [])`` when it only encodes ahead, else the events it commits.

        Encoding and SQL are budgeted apart, so a transaction carries as many events as its SQL
        alone can write in ``budget_s`` (small transactions cost more per event: each one rewrites
        the same hot pages to the WAL). A slice commits such a transaction when that many events
        are encoded, or every event the transaction may take is; otherwise it encodes ahead until
        its budget is spent, and commits in the same slice only if what it encoded is all there
        is and its commit fits in what is left. The commit's cost is fitted by :class:`CommitCost`.
        """
        if budget_s is None:
            return self._encode()
        deadline = time.perf_counter() + budget_s
        full = min(len(self._pending), self._batch_size)
        count = self._fitting(budget_s)
        if count < len(self._encoded) or len(self._encoded) >= full:
            return count, self._rows(count)
        self._encode_ahead(full, deadline)
        count = self._fitting(deadline - time.perf_counter())
        if len(self._encoded) < full or self._commit_cost(len(self._rows(count))) > deadline - time.perf_counter():
            return 0, []
        return count, self._rows(count)

    def _fitting(self, seconds: float) -> int:
        """How many of the encoded events one commit can write in ``seconds`` (at least one, if any)."""
        cost, rows, count = self._commit_cost, 0, 0
        for event_rows in itertools.islice(self._encoded, self._batch_size):
            rows += len(event_rows)
            if count and cost(rows) > seconds:
                break
            count += 1
        return count

    def _rows(self, count: int) -> list[Row]:
        return [row for rows in self._encoded[:count] for row in rows]

    def _encode_ahead(self, upto: int, deadline: float | None) -> None:
        """Encode queued events until ``upto`` are encoded (or ``deadline`` passes, at least one)."""
        pending, encoded = self._pending, self._encoded
        for i in range(len(encoded), min(upto, len(pending))):
            encoded.append(rows_for(pending[i]))
            if deadline is not None and time.perf_counter() >= deadline:
                break

    async def _commit_rows(self, rows: list[Row]) -> None:
        """Commit ``rows`` now (the caller holds the lock); raises when the write fails."""
        if not self._writer_conn.commit(rows):
            await self._execute_rows(rows)

    async def _execute_rows(self, rows: list[Row]) -> None:
        """Execute and commit ``rows`` in one trip to aiosqlite's thread (it waits for the lock).

        ``_execute`` and ``_conn`` are aiosqlite internals (stable since 0.17); the rows run in
        order, in one transaction.
        """
        await self._conn._execute(_execute_and_commit, self._conn._conn, rows)

    async def _rotate_log(self) -> None:
        """Move the sending log aside, fold it into the table, then delete it (a failure keeps it: retried)."""
        self._log.rotate()
        if not self._log.rotated.exists():
            return
        async with self._lock:  # between this journal's own writes
            try:
                await _fold_sending_log(self._conn, self.path)
            except sqlite3.Error as exc:
                await self._conn.rollback()
                log.warning("journal: sending log not folded into the table: %s", exc)
                return
        self._log.rotated.unlink(missing_ok=True)
        await _prune_sending(self._conn)

    async def _checkpoint(self) -> None:
        self._since_checkpoint = 0
        try:
            await self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next commits still land in the WAL; only its size grows
            log.warning("journal checkpoint failed: %s", exc)

    async def _report_failure(self, exc: BaseException) -> None:
        try:
            await self._conn.rollback()  # the write may have failed in aiosqlite's thread
        except aiosqlite.Error as rollback_exc:
            log.error("journal rollback failed: %s", rollback_exc)
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        log.error("journal write failed: %s", exc)
        self.failed = exc
        if self._on_failure is not None:
            self._on_failure(exc)


def _create_private(path: Path) -> None:
    """Create a new journal file readable by its owner only (0600), as its sending log is.

    It holds the account's orders, fills and P&L; SQLite would create it with the umask's mode
    (0644 by default), readable by every user of the machine. An empty file is a new database to
    SQLite, and SQLite gives the WAL and shared-memory files the database file's mode. An existing
    journal keeps the mode it has.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


async def _fold_sending_log(conn: aiosqlite.Connection, path: Path) -> None:
    """Copy every complete record of ``path``'s sending logs into the ``sending`` table (idempotent)."""
    rows = sending.read_log(path)
    if rows:
        await conn.executemany(sending.INGEST_SQL, rows)
        await conn.commit()


async def _prune_sending(conn: aiosqlite.Connection) -> None:
    """Drop the write-ahead rows the event log has caught up with (housekeeping: a failure only logs)."""
    try:
        async with conn.execute(sending.PENDING_ALL_SQL) as cur:
            stale = sending.superseded(await cur.fetchall())
        if stale:
            await conn.executemany(sending.PRUNE_SQL, [(row_id,) for row_id in stale])
            await conn.commit()
    except sqlite3.OperationalError as exc:  # another process held the write lock past the busy timeout
        await conn.rollback()
        log.warning("journal: write-ahead rows not pruned: %s", exc)


def _execute_and_commit(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """Runs in aiosqlite's thread: the rows in order, then the commit."""
    for sql, params in rows:
        conn.execute(sql, params)
    conn.commit()
