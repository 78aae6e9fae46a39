"""The SQLite journal: an append-only event log plus the tables derived from it.

One file, aiosqlite, WAL. Events are batched off the hot path: :meth:`Journal.append` only
queues; a writer task commits a batch every ``flush_interval_ms`` or every ``batch_size``
events. :meth:`Journal.flush` commits everything queued now — the engine awaits it so an
order is durably journaled as SENDING before it goes on the wire. A failed write keeps the
events queued, records the failure and calls ``on_failure`` (the engine halts trading).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from tui_trader.domain import events as ev
from tui_trader.domain.orders import Fill, Order
from tui_trader.store import codec
from tui_trader.store.derive import Row, rows_for
from tui_trader.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)
FINAL = ("FILLED", "CANCELLED", "REJECTED", "EXPIRED")


class EventSource(Protocol):
    """A lossless event subscription (``tui_trader.engine.bus.Subscription``)."""

    async def get(self) -> ev.Event: ...

    def drain(self, limit: int = ...) -> list[ev.Event]: ...

    @property
    def backlog(self) -> int: ...


class Journal:
    """Append-only, batched journal of engine events."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, batch_size: int, flush_interval_s: float,
                 on_failure: Callable[[BaseException], None] | None) -> None:
        self.path = path
        self.failed: BaseException | None = None
        self.written = 0
        self._conn = conn
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._on_failure = on_failure
        self._pending: list[ev.Event] = []
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._sub: EventSource | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, path: Path, *, batch_size: int = 200, flush_interval_ms: float = 50.0,
                   on_failure: Callable[[BaseException], None] | None = None) -> Journal:
        """Open (creating and migrating as needed) the journal at ``path`` and start its writer."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await migrate(conn)
        journal = cls(conn, path, batch_size, flush_interval_ms / 1000, on_failure)
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
        if self._sub is not None:
            self._pending.extend(self._sub.drain(limit=1_000_000))
        await self._write_pending()
        if self.failed is not None:
            raise self.failed

    async def save_kill_state(self, state: dict[str, Any], when: datetime) -> None:
        """Persist the latched kill state now (committed before this returns)."""
        await self.flush()
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO kill_state(id, engaged, updated_at, payload) VALUES (1, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET engaged=excluded.engaged, updated_at=excluded.updated_at, "
                "payload=excluded.payload",
                (int(bool(state.get("engaged"))), when.isoformat(), codec_json(state)),
            )
            await self._conn.commit()

    async def save_daily_summary(self, day: str, summary: dict[str, Any]) -> None:
        """Store (or replace) the summary of one trading day."""
        async with self._lock:
            await self._conn.execute(
                "INSERT OR REPLACE INTO daily_summaries(day, payload) VALUES (?, ?)", (day, codec_json(summary))
            )
            await self._conn.commit()

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close the file."""
        try:
            await self.flush()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._conn.close()

    async def _pump(self, sub: EventSource) -> None:
        while True:
            self.append(await sub.get())

    async def _writer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if len(self._pending) < self._batch_size:
                await asyncio.sleep(self._interval)
            await self._write_pending()

    async def _write_pending(self) -> None:
        async with self._lock:
            while self._pending:
                batch = self._pending[: self._batch_size]
                if not await self._write_batch(batch):
                    return
                del self._pending[: len(batch)]
                self.written += len(batch)

    async def _write_batch(self, batch: list[ev.Event]) -> bool:
        try:
            await self._execute_rows([row for event in batch for row in rows_for(event)])
        except (aiosqlite.Error, OSError, ValueError) as exc:
            await self._report_failure(exc)
            return False
        self.failed = None
        return True

    async def _execute_rows(self, rows: list[Row]) -> None:
        """Execute and commit ``rows`` in one trip to aiosqlite's thread.

        Every await on the connection is a hop to its thread and back (0.05–2 ms on a busy
        machine), and the order path waits for this commit before each send: one hop for the
        whole batch instead of one per row. ``_execute`` and ``_conn`` are aiosqlite internals
        (stable since 0.17); the rows run in order, exactly as before.
        """
        await self._conn._execute(_execute_and_commit, self._conn._conn, rows)

    async def _report_failure(self, exc: BaseException) -> None:
        log.error("journal write failed: %s", exc)
        self.failed = exc
        try:
            await self._conn.rollback()
        except aiosqlite.Error as rollback_exc:
            log.error("journal rollback failed: %s", rollback_exc)
        if self._on_failure is not None:
            self._on_failure(exc)

    # -- reading ---------------------------------------------------------------------------

    async def load_kill_state(self) -> dict[str, Any] | None:
        """The latched kill state as last saved, or ``None`` if never saved."""
        row = await self._one("SELECT payload FROM kill_state WHERE id = 1")
        return codec_load_json(row[0]) if row else None

    async def orders(self, open_only: bool = False) -> list[Order]:
        """Every journaled order (or only those not in a final state), oldest first."""
        sql = "SELECT payload FROM orders"
        if open_only:
            sql += f" WHERE status NOT IN ({','.join('?' * len(FINAL))})"
        sql += " ORDER BY created_at"
        rows = await self._all(sql, FINAL if open_only else ())
        return [codec.load(Order, r[0]) for r in rows]

    async def open_orders(self) -> list[Order]:
        """Orders not in a final state (to adopt after a restart)."""
        return await self.orders(open_only=True)

    async def order(self, order_ref: str) -> Order | None:
        """One order by its orderRef."""
        row = await self._one("SELECT payload FROM orders WHERE order_ref = ?", (order_ref,))
        return codec.load(Order, row[0]) if row else None

    async def fills(self, since: datetime | None = None) -> list[Fill]:
        """Fills in time order, optionally from ``since`` on."""
        sql = "SELECT exec_id, order_ref, symbol, side, quantity, price, time, broker_id, commission, " \
              "realized_pnl FROM fills"
        params: tuple[Any, ...] = ()
        if since is not None:
            sql, params = sql + " WHERE time >= ?", (since.isoformat(),)
        rows = await self._all(sql + " ORDER BY time, exec_id", params)
        return [_fill_from_row(r) for r in rows]

    async def known_exec_ids(self) -> set[str]:
        """Every execution id already journaled."""
        return {r[0] for r in await self._all("SELECT exec_id FROM fills")}

    async def last_execution_time(self) -> datetime | None:
        """Time of the newest journaled execution."""
        row = await self._one("SELECT MAX(time) FROM fills")
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def events(self, kinds: Iterable[str] | None = None, order_ref: str | None = None,
                     since: datetime | None = None) -> list[ev.Event]:
        """Journaled events in order, filtered by kind, order or time."""
        clauses, params = _event_filters(kinds, order_ref, since)
        sql = "SELECT kind, payload FROM events" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        rows = await self._all(sql + " ORDER BY id", params)
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


def _event_filters(kinds: Iterable[str] | None, order_ref: str | None,
                   since: datetime | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if kinds is not None:
        names = list(kinds)
        clauses.append(f"kind IN ({','.join('?' * len(names))})")
        params.extend(names)
    if order_ref is not None:
        clauses.append("order_ref = ?")
        params.append(order_ref)
    if since is not None:
        clauses.append("time >= ?")
        params.append(since.isoformat())
    return clauses, params


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
