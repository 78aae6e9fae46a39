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
``on_failure`` (the engine halts trading).
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
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from tui_trader.domain import events as ev
from tui_trader.domain.orders import Fill, Order
from tui_trader.store import codec, sending
from tui_trader.store.derive import Row, rows_for
from tui_trader.store.lock import JournalLock
from tui_trader.store.schema import MIGRATIONS, SCHEMA_VERSION
from tui_trader.store.writer import LoopWriter, ReadOnlyWriter

log = logging.getLogger(__name__)
FINAL = ("FILLED", "CANCELLED", "REJECTED", "EXPIRED")
SLICE_S = 0.0004
"""Time budget of one write slice (it encodes ahead, or commits one transaction) of the writer task and of
:meth:`Journal.flush`; they yield the loop between slices (``journal.max_loop_block_ms`` in bench_journal.py).
A slice can still run over: a garbage collection its allocations trigger lands in it."""
CHECKPOINT_EVERY = 2_000
"""Events written between two WAL checkpoints (run in aiosqlite's thread: a checkpoint fsyncs)."""


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


class EventSource(Protocol):
    """A lossless event subscription (``tui_trader.engine.bus.Subscription``)."""

    async def get(self) -> ev.Event: ...

    def drain(self, limit: int = ...) -> list[ev.Event]: ...

    @property
    def backlog(self) -> int: ...


class Journal:
    """Append-only, batched journal of engine events."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, batch_size: int, flush_interval_s: float,
                 on_failure: Callable[[BaseException], None] | None,
                 sending_log_bytes: int = sending.ROTATE_BYTES, *, read_only: bool = False) -> None:
        """``conn`` reads (and writes what waits for a lock); ``read_only``: ``conn`` is a read-only
        connection and nothing else is opened: every write is refused (a report's journal)."""
        self.path = path
        self.read_only = read_only
        self.failed: BaseException | None = None
        self.written = 0
        self._conn = conn
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
        self._sending_table: bool | None = None
        self._lock_file: JournalLock | None = None
        """Whether the file has the ``sending`` table (schema 2 on; a reader does not migrate an older file)."""

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
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        try:
            await _fold_sending_log(conn, path)
        except sqlite3.Error as exc:  # nothing is lost: the log stays (readers read it), the next open folds it
            await conn.rollback()
            log.warning("journal: sending log not folded into the table at open: %s", exc)
        await _prune_sending(conn)
        journal = cls(conn, path, batch_size, flush_interval_ms / 1000, on_failure, sending_log_bytes)
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

    async def save_kill_state(self, state: dict[str, Any], when: datetime) -> None:
        """Persist the latched kill state now (committed before this returns)."""
        await self.flush()
        async with self._lock:
            await self._commit_rows([(
                "INSERT INTO kill_state(id, engaged, updated_at, payload) VALUES (1, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET engaged=excluded.engaged, updated_at=excluded.updated_at, "
                "payload=excluded.payload",
                (int(bool(state.get("engaged"))), when.isoformat(), codec_json(state)),
            )])

    async def save_daily_summary(self, day: str, summary: dict[str, Any]) -> None:
        """Store (or replace) the summary of one trading day."""
        async with self._lock:
            await self._commit_rows([
                ("INSERT OR REPLACE INTO daily_summaries(day, payload) VALUES (?, ?)", (day, codec_json(summary)))
            ])

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close the file."""
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

    # -- reading ---------------------------------------------------------------------------

    async def load_kill_state(self) -> dict[str, Any] | None:
        """The latched kill state as last saved, or ``None`` if never saved."""
        row = await self._one("SELECT payload FROM kill_state WHERE id = 1")
        return codec_load_json(row[0]) if row else None

    async def orders(self, open_only: bool = False, since: datetime | None = None) -> list[Order]:
        """Every journaled order (or only those not in a final state, or only those updated from ``since``
        on: an order whose last step is older changed nothing since), oldest first."""
        clauses, params = _time_filters(since, None, "updated_at")
        if open_only:
            clauses.append(f"status NOT IN ({','.join('?' * len(FINAL))})")
            params.extend(FINAL)
        sql = "SELECT updated_at, payload FROM orders" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        rows = await self._all(sql + " ORDER BY created_at", params)
        if since is not None:  # exactly, before the payloads are decoded (the bound was widened)
            rows = [r for r in rows if datetime.fromisoformat(r[0]) >= since]
        # SENDING, the batch after it not written: the write-ahead record replaces an older ``orders`` row.
        ahead = {o.order_ref: o for o in await self._ahead() if _within(o.updated_at, since, None)}
        journaled = [o for o in (codec.load(Order, r[1]) for r in rows) if o.order_ref not in ahead]
        return sorted([*journaled, *ahead.values()], key=lambda o: o.created_at)

    async def open_orders(self) -> list[Order]:
        """Orders not in a final state (to adopt after a restart)."""
        return await self.orders(open_only=True)

    async def order(self, order_ref: str) -> Order | None:
        """One order by its orderRef."""
        ahead = await self._ahead(order_ref)
        if ahead:  # SENDING, the batch after it not written
            return ahead[-1]
        row = await self._one("SELECT payload FROM orders WHERE order_ref = ?", (order_ref,))
        return codec.load(Order, row[0]) if row is not None else None

    async def _ahead(self, order_ref: str | None = None) -> list[Order]:
        """Orders whose write-ahead record, in the table or the sending log, is newer than their ``orders`` row."""
        rows: list[Any] = []
        if not await self._has_sending_table():
            pass  # a journal older than the write-ahead record, opened read-only (not migrated)
        elif order_ref is None:
            rows = await self._all(sending.PENDING_ALL_SQL)
        else:
            rows = await self._all(sending.PENDING_OF_REF_SQL, (order_ref,))
        logged = [r for r in sending.read_log(self.path) if order_ref is None or r[0] == order_ref]
        if logged:  # newer than the table's rows (those were folded from earlier logs): last, so they win
            refs = sorted({r[0] for r in logged})
            sql = sending.JOURNALED_SQL.format(",".join("?" * len(refs)))
            journaled = {r[0]: tuple(r[1:]) for r in await self._all(sql, refs)}
            rows += [(0, *r, *journaled.get(r[0], (None, None))) for r in logged]
        return sending.pending_of(rows)

    async def _has_sending_table(self) -> bool:
        if self._sending_table is None:
            row = await self._one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sending'")
            self._sending_table = row is not None
        return self._sending_table

    async def fills(self, since: datetime | None = None, until: datetime | None = None) -> list[Fill]:
        """Fills in time order, optionally from ``since`` on and before ``until`` (instants, any time zone)."""
        sql = "SELECT exec_id, order_ref, symbol, side, quantity, price, time, broker_id, commission, " \
              "realized_pnl FROM fills"
        clauses, params = _time_filters(since, until)
        rows = await self._all(sql + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY time, exec_id",
                               params)
        return [f for f in map(_fill_from_row, rows) if _within(f.time, since, until)]

    async def known_exec_ids(self) -> set[str]:
        """Every execution id already journaled."""
        return {r[0] for r in await self._all("SELECT exec_id FROM fills")}

    async def has_fill(self, exec_id: str) -> bool:
        """True when the execution ``exec_id`` is journaled."""
        return await self._one("SELECT 1 FROM fills WHERE exec_id = ?", (exec_id,)) is not None

    async def has_daily_summary(self, day: str) -> bool:
        """True when the summary of the trading day ``day`` (ISO date) is journaled."""
        return await self._one("SELECT 1 FROM daily_summaries WHERE day = ?", (day,)) is not None

    async def last_execution_time(self, before: datetime | None = None) -> datetime | None:
        """Time of the newest journaled execution (before the instant ``before`` when given)."""
        bound = " WHERE time < ?" if before is not None else ""
        row = await self._one("SELECT MAX(time) FROM fills" + bound, _utc_bound(before))
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def last_summary_day(self, before: str) -> str | None:
        """The newest trading day (ISO date) before ``before`` whose summary is journaled."""
        row = await self._one("SELECT MAX(day) FROM daily_summaries WHERE day < ?", (before,))
        return row[0] if row and row[0] else None

    async def last_event_time(self, before: datetime, kinds: Sequence[str] = ()) -> datetime | None:
        """Time of the newest journaled event before the instant ``before``, of ``kinds`` when given.

        Compares stored times as text against ``before`` in UTC: exact for the times the engine
        writes (UTC). One query per kind reads the (kind, time) index; without ``kinds``, every kind
        journaled is found on the same index (a skip over it: one step per kind, not per row), so a
        row appended late with an older time (an execution a reconciliation found) hides no newer one.
        """
        if kinds:
            one = "SELECT MAX(time) AS t FROM events WHERE kind = ? AND time < ?"
            per_kind = " UNION ALL ".join(one for _ in kinds)
            row = await self._one(f"SELECT MAX(t) FROM ({per_kind})",
                                  [p for kind in kinds for p in (kind, *_utc_bound(before))])
        else:
            row = await self._one(_NEWEST_OF_EVERY_KIND, _utc_bound(before))
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def book_positions(self, before: datetime) -> dict[str, float]:
        """Each symbol's quantity in the engine's book as of the instant ``before`` (flat ones may be 0).

        The book as the engine rebuilds it (:meth:`book_events`): the newest ``BookCheckpointed``
        journaled before ``before``, plus the executions before ``before`` journaled after that
        checkpoint (all of them when there is none). Summing executions alone missed every position
        adopted from the broker (a checkpoint, no fill): one adopted and then sold read as short for ever.
        """
        bound = _utc_bound(before)
        checkpoint = await self._one("SELECT id, payload FROM events WHERE kind = 'BookCheckpointed' AND time < ? "
                                     "ORDER BY time DESC, id DESC LIMIT 1", bound)
        if checkpoint is None:
            rows = await self._all("SELECT symbol, SUM(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) "
                                   "FROM fills WHERE time < ? GROUP BY symbol", bound)
            return {symbol: float(quantity) for symbol, quantity in rows}
        book = json.loads(checkpoint[1])["state"]
        held = {symbol: float(p[0]) for symbol, p in book.get("positions", {}).items()}
        # Read with json, not the codec: a few fills, and only their figures (a payload may hold NaN: not SQL's JSON).
        for (payload,) in await self._all("SELECT payload FROM events WHERE kind = 'OrderFilled' AND id > ?",
                                          (checkpoint[0],)):
            fill = json.loads(payload)["fill"]
            if datetime.fromisoformat(fill["time"]) < before:
                signed = fill["quantity"] if fill["side"] == "BUY" else -fill["quantity"]
                held[fill["symbol"]] = held.get(fill["symbol"], 0.0) + signed
        return held

    async def events(self, kinds: Iterable[str] | None = None, order_ref: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> list[ev.Event]:
        """Journaled events in order, filtered by kind, order or time (from ``since`` on, before ``until``)."""
        clauses, params = _event_filters(kinds, order_ref, since, until)
        sql = "SELECT kind, payload FROM events" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        rows = await self._all(sql + " ORDER BY id", params)
        events = (codec.load_event(r[0], r[1]) for r in rows)
        return [e for e in events if _within(e.time, since, until)]

    async def book_events(self, kinds: Iterable[str]) -> list[ev.Event]:
        """The newest ``BookCheckpointed`` and the events of ``kinds`` journaled after it, in order (all
        of them when no checkpoint was journaled): what rebuilding the book needs. The engine saves
        its book every 30 s while it moves, so reading every checkpoint since the journal began
        would make each start slower than the last."""
        names = list(kinds)
        sql = (f"SELECT kind, payload FROM events WHERE kind IN ({','.join('?' * len(names))}) AND id >= "
               "COALESCE((SELECT MAX(id) FROM events WHERE kind = 'BookCheckpointed'), 0) ORDER BY id")
        rows = await self._all(sql, names)
        return [codec.load_event(r[0], r[1]) for r in rows]

    async def count(self, table: str) -> int:
        """Rows in one of the journal's tables."""
        if table not in {"events", "orders", "order_states", "fills", "operator_actions", "alerts"}:
            raise ValueError(f"no journal table {table!r}")
        row = await self._one(f"SELECT COUNT(*) FROM {table}")
        return int(row[0]) if row else 0

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        async with self._conn.execute(sql, tuple(params)) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._conn.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())


async def migrate(conn: aiosqlite.Connection) -> int:
    """Apply the migrations the file has not seen yet; returns the schema version."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"journal schema {version} is newer than this tui-trader ({SCHEMA_VERSION})")
    for number in range(version, SCHEMA_VERSION):
        await conn.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")
    return SCHEMA_VERSION


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


def _event_filters(kinds: Iterable[str] | None, order_ref: str | None, since: datetime | None,
                   until: datetime | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if kinds is not None:
        names = list(kinds)
        clauses.append(f"kind IN ({','.join('?' * len(names))})")
        params.extend(names)
    if order_ref is not None:
        clauses.append("order_ref = ?")
        params.append(order_ref)
    time_clauses, time_params = _time_filters(since, until)
    return clauses + time_clauses, params + time_params


_NEWEST_OF_EVERY_KIND = (
    "WITH RECURSIVE kinds(kind) AS (SELECT MIN(kind) FROM events UNION ALL "
    "SELECT (SELECT MIN(kind) FROM events WHERE kind > kinds.kind) FROM kinds WHERE kinds.kind IS NOT NULL) "
    "SELECT MAX((SELECT MAX(time) FROM events WHERE kind = kinds.kind AND time < ?)) FROM kinds"
)
"""The newest time before a bound among every kind's events: a loose scan of the (kind, time) index that
visits each kind once (the log has no index on time alone, and a schema change is not worth one)."""

MAX_UTC_OFFSET = timedelta(hours=14)
"""The widest offset from UTC a stored time can carry (+14:00, Kiribati; the most negative is -12:00)."""


def _time_filters(since: datetime | None, until: datetime | None,
                  column: str = "time") -> tuple[list[str], list[Any]]:
    """SQL bounds on a time ``column`` that keep at least every row in [since, until).

    Times are stored as ISO text with their own offset (the engine's are UTC): text compares as
    instants only between equal offsets, so "2026-03-05T02:30:00+00:00" (21:30 in New York on
    the 4th) sorted after a New York midnight of the 5th written "2026-03-05T00:00:00-05:00".
    The bounds are in UTC, widened by :data:`MAX_UTC_OFFSET` so a row stored with another offset
    is kept too; the caller filters the rows exactly (:func:`_within`).
    """
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append((since.astimezone(UTC) - MAX_UTC_OFFSET).isoformat())
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append((until.astimezone(UTC) + MAX_UTC_OFFSET).isoformat())
    return clauses, params


def _utc_bound(before: datetime | None) -> tuple[str, ...]:
    """``before`` as the UTC text the engine's stored times compare with (none when ``None``)."""
    return () if before is None else (before.astimezone(UTC).isoformat(),)


def _within(when: datetime, since: datetime | None, until: datetime | None) -> bool:
    """True when the instant ``when`` is in [since, until) (an open bound when ``None``)."""
    return (since is None or when >= since) and (until is None or when < until)


def _fill_from_row(row: Any) -> Fill:
    exec_id, ref, symbol, side, qty, price, time, broker_id, commission, pnl = row
    return codec.load(Fill, codec_json({
        "exec_id": exec_id, "order_ref": ref, "symbol": symbol, "side": side, "quantity": qty,
        "price": price, "time": time, "broker_id": broker_id, "commission": commission, "realized_pnl": pnl,
    }))


def codec_json(value: dict[str, Any]) -> str:
    """A plain dict as JSON (datetimes as ISO text)."""
    return json.dumps(value, default=_json_default, sort_keys=True)


def codec_load_json(text: str) -> dict[str, Any]:
    """The dict stored by :func:`codec_json`."""
    data: dict[str, Any] = json.loads(text)
    return data


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"cannot journal {type(value).__name__}")


def _execute_and_commit(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """Runs in aiosqlite's thread: the rows in order, then the commit."""
    for sql, params in rows:
        conn.execute(sql, params)
    conn.commit()
