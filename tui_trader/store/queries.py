"""The journal's read-only queries: orders, fills, events, the kill state, daily summaries, counts.

:class:`JournalQueries` only reads, through the journal's aiosqlite connection (and the sending
log it reads beside the file, :mod:`tui_trader.store.sending`); :class:`~tui_trader.store.journal.Journal`
adds the writing. Reports, recovery and the missed daily summary call these on a ``Journal``,
also on one opened read-only (``tui-trader report``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from tui_trader.domain import events as ev
from tui_trader.domain.orders import Fill, Order
from tui_trader.store import codec, fill_owners, sending
from tui_trader.store.codec import codec_json, codec_load_json
from tui_trader.store.schema import BACKFILLED, FILL_PERM_IDS

FINAL = ("FILLED", "CANCELLED", "REJECTED", "EXPIRED")
_FINAL_MARKS = ",".join("?" * len(FINAL))
PERIODIC_LIKE = f'%"reason":{json.dumps(ev.BOOK_PERIODIC)}%'
"""A periodic checkpoint's payload, as the journal encodes its reason (``LIKE``: no SQL JSON, a payload may hold
NaN): :data:`~tui_trader.domain.events.BOOK_PERIODIC`."""
"""One ``?`` for each of :data:`FINAL` (a status's ``IN`` list)."""


@dataclass(frozen=True, slots=True)
class BookStart:
    """Where a journal's book began (:meth:`JournalQueries.book_start`): the executions from before the broker's
    positions it was seeded with at its first reconciliation, which are not the journal's fills (its positions are
    the first of :meth:`JournalQueries.book_adjustments`)."""

    executions_before: frozenset[str]
    """Ids of the executions the broker reported then, left out of the book (already in its positions)."""
    journaled_before: frozenset[str]
    """Ids of the fills journaled before the seed (an earlier version booked the day's executions from before it)."""


@dataclass(frozen=True, slots=True)
class BookAt:
    """The engine's book as of an instant, as it rebuilds it on start (:meth:`JournalQueries.book_at`): its newest
    checkpoint before then, and the fills journaled after that checkpoint, executed before then."""

    positions: dict[str, float]
    """Symbol → quantity the checkpoint holds."""
    journaled_after: dict[str, tuple[str, float]]
    """Exec id → (symbol, signed quantity) of each fill journaled after the checkpoint, executed before the instant."""


@dataclass(frozen=True, slots=True)
class BookAdjustment:
    """A checkpoint whose positions are not what the journal's fills make: positions the engine took from the broker
    (a new journal's seed, a position adjusted to the broker at a reconciliation, executions left out as another
    run's), which no fill of the journal makes."""

    time: datetime
    """When the checkpoint was written (the engine's clock)."""
    reason: str
    """Why it was written (:attr:`~tui_trader.domain.events.BookCheckpointed.reason`)."""
    moved: dict[str, tuple[float, float]]
    """Symbol → (the signed quantity the book holds beyond what the fills journaled before it make, the book's
    average cost of the position then)."""
    owners: dict[str, str]
    """Symbol → the strategy that opened the position, where the book knows one."""


@dataclass(frozen=True, slots=True)
class BookAdjustments:
    """The journal's book adjustments in the order journaled (:meth:`JournalQueries.book_adjustments`), and where each
    comes among the fills: a walk of the fills applies each before the first fill journaled after it."""

    adjustments: tuple[BookAdjustment, ...]
    preceding: dict[str, int]
    """Exec id → how many of :attr:`adjustments` were journaled before its fill."""

    def before_fill(self, exec_id: str) -> int:
        """How many adjustments come before the fill ``exec_id`` (all of them for one the journal has not)."""
        return self.preceding.get(exec_id, len(self.adjustments))


class JournalQueries:
    """The journal's reads, over ``conn`` (the journal's aiosqlite connection) and the sending log beside ``path``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.path = path
        self._conn = conn
        self._sending_table: bool | None = None
        """Whether the file has the ``sending`` table (schema 2 on; a reader does not migrate an older file)."""
        self._schema: int | None = None
        """The file's ``user_version`` (a reader does not migrate an older file)."""
        self._owners: dict[str, fill_owners.FillOwner] = {}
        """What the journal says of the order of each fill read without a permanent id (:mod:`fill_owners`)."""

    async def load_kill_state(self) -> dict[str, Any] | None:
        """The latched kill state as last saved, or ``None`` if never saved."""
        row = await self._one("SELECT payload FROM kill_state WHERE id = 1")
        return codec_load_json(row[0]) if row else None

    async def orders(self, open_only: bool = False, since: datetime | None = None) -> list[Order]:
        """Every journaled order (or only those not in a final state, or only those updated from ``since``
        on: an order whose last step is older changed nothing since), oldest first."""
        where = [f"status NOT IN ({_FINAL_MARKS})"] if open_only else []
        journaled = await self._journaled_orders(since, where, FINAL if open_only else ())
        # SENDING, the batch after it not written: the write-ahead record replaces an older ``orders`` row.
        ahead = {o.order_ref: o for o in await self._ahead() if _within(o.updated_at, since, None)}
        journaled = [o for o in journaled if o.order_ref not in ahead]
        return sorted([*journaled, *ahead.values()], key=lambda o: o.created_at)

    async def open_orders(self) -> list[Order]:
        """Orders not in a final state (to adopt after a restart)."""
        return await self.orders(open_only=True)

    async def finished_orders(self, since: datetime, limit: int) -> list[Order]:
        """The newest ``limit`` orders that reached a final state from the instant ``since`` on (their last step),
        oldest first: the day's finished orders a restarted engine shows beside its open ones.

        The write-ahead records (:meth:`_ahead`) are not read: each is an order SENDING, not finished, and
        none is newer than a final ``orders`` row (a final row has caught up with it, :mod:`sending`)."""
        # Read newest first: the rows the exact ``since`` cut drops after the limit are the oldest read.
        finished = await self._journaled_orders(since, [f"status IN ({_FINAL_MARKS})"], FINAL,
                                                order_by="updated_at DESC", limit=limit)
        return sorted(finished, key=lambda o: o.updated_at)

    async def _journaled_orders(self, since: datetime | None, where: Sequence[str], params: Sequence[Any],
                                order_by: str = "created_at", limit: int | None = None) -> list[Order]:
        """The ``orders`` rows meeting ``where`` (its ``?`` bound to ``params``) and updated from ``since`` on,
        decoded, in ``order_by`` order (read up to ``limit`` rows, if given, before the exact ``since`` cut)."""
        clauses, bounds = _time_filters(since, None, "updated_at")
        clauses = [*where, *clauses]
        sql = "SELECT updated_at, payload FROM orders" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += f" ORDER BY {order_by}" + (" LIMIT ?" if limit is not None else "")
        rows = await self._all(sql, [*params, *bounds, *([] if limit is None else [limit])])
        if since is not None:  # exactly, before the payloads are decoded (the bound was widened)
            rows = [r for r in rows if datetime.fromisoformat(r[0]) >= since]
        return [codec.load(Order, r[1]) for r in rows]

    async def order(self, order_ref: str) -> Order | None:
        """One order by its orderRef."""
        ahead = await self._ahead(order_ref)
        if ahead:  # SENDING, the batch after it not written
            return ahead[-1]
        row = await self._one("SELECT payload FROM orders WHERE order_ref = ?", (order_ref,))
        return codec.load(Order, row[0]) if row is not None else None

    async def has_refs_under(self, prefix: str) -> bool:
        """True when the ``orders`` table has an order whose ref is ``<prefix>-…`` (a run's own refs)."""
        # A range on the primary key ('.' follows '-'): read on its index, where LIKE would scan every order.
        return await self._one("SELECT 1 FROM orders WHERE order_ref >= ? AND order_ref < ? LIMIT 1",
                               (f"{prefix}-", f"{prefix}.")) is not None

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
        perm = "perm_id" if await self._schema_version() >= FILL_PERM_IDS else "NULL"
        sql = "SELECT exec_id, order_ref, symbol, side, quantity, price, time, broker_id, commission, " \
              f"realized_pnl, {perm} FROM fills"
        clauses, params = _time_filters(since, until)
        rows = await self._all(sql + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY time, exec_id",
                               params)
        fills = [f for f in map(_fill_from_row, rows) if _within(f.time, since, until)]
        if await self._schema_version() >= BACKFILLED:
            return fills
        # A file before the backfill, read without migrating it: its fills read as the backfill would have left them.
        found = await self._owners_of(fills)
        return [replace(f, perm_id=found[f.exec_id].perm_id) if f.exec_id in found else f for f in fills]

    async def fill_doubts(self, fills: Iterable[Fill]) -> dict[str, str]:
        """Why the order of each of ``fills`` is uncertain, by execution id: those without a permanent id whose
        orderRef the journal cannot tie to one order (:mod:`~tui_trader.store.fill_owners`)."""
        found = await self._owners_of(fills)
        return {exec_id: owner.doubt for exec_id, owner in found.items() if owner.doubt}

    async def _owners_of(self, fills: Iterable[Fill]) -> dict[str, fill_owners.FillOwner]:
        """The owners of those of ``fills`` without a permanent id. Kept for a file before the backfill (read-only,
        asked at each read of its fills); asked afresh of a newer one, whose engine may journal more orders since."""
        bare = [f for f in fills if not f.perm_id]
        kept = self._owners if await self._schema_version() < BACKFILLED else {}
        ask = [fill_owners.FillRow(f.exec_id, f.order_ref, f.symbol, str(f.side), f.broker_id) for f in bare
               if f.exec_id not in kept]
        found = {**kept, **await fill_owners.owners(self._conn, ask)}
        kept.update(found)
        return {f.exec_id: found[f.exec_id] for f in bare}

    async def _schema_version(self) -> int:
        if self._schema is None:
            row = await self._one("PRAGMA user_version")
            self._schema = int(row[0]) if row else 0
        return self._schema

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

        The book as the engine rebuilds it (:meth:`book_at`); with no checkpoint before ``before``, the executions
        before it. Summing executions alone missed every position adopted from the broker (a checkpoint, no fill):
        one adopted and then sold read as short for ever.
        """
        book = await self.book_at(before)
        if book is None:
            rows = await self._all("SELECT symbol, SUM(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) "
                                   "FROM fills WHERE time < ? GROUP BY symbol", _utc_bound(before))
            return {symbol: float(quantity) for symbol, quantity in rows}
        held = dict(book.positions)
        for symbol, signed in book.journaled_after.values():
            held[symbol] = held.get(symbol, 0.0) + signed
        return held

    async def book_at(self, before: datetime) -> BookAt | None:
        """The book as of the instant ``before`` as the engine rebuilds it (:meth:`book_events`): the newest
        ``BookCheckpointed`` journaled before ``before``, and the executions before ``before`` journaled after it;
        ``None`` when no checkpoint was journaled before ``before``.

        Its positions are the broker's where the engine took them from it (a new journal's seed, a position adjusted
        to the broker at a reconciliation, executions left out as another run's): no fill of the journal makes them.
        """
        checkpoint = await self._one("SELECT id, payload FROM events WHERE kind = 'BookCheckpointed' "
                                     "AND time < ? ORDER BY time DESC, id DESC LIMIT 1", _utc_bound(before))
        if checkpoint is None:
            return None
        after: dict[str, tuple[str, float]] = {}
        # Read with json, not the codec: a few fills, and only their figures (a payload may hold NaN: not SQL's JSON).
        for (fill_payload,) in await self._all("SELECT payload FROM events WHERE kind = 'OrderFilled' AND id > ?",
                                               (checkpoint[0],)):
            fill = json.loads(fill_payload)["fill"]
            if datetime.fromisoformat(fill["time"]) < before:
                after[fill["exec_id"]] = (fill["symbol"], _signed(fill))
        positions = json.loads(checkpoint[1])["state"].get("positions", {})
        return BookAt({s: float(p[0]) for s, p in positions.items()}, after)

    async def book_adjustments(self, before: datetime | None = None) -> BookAdjustments:
        """The checkpoints written before the instant ``before`` (all when ``None``) at which the book's positions are
        not what the fills journaled before them make (:class:`BookAdjustment`), in journal order.

        By id, not time, as the engine rebuilds its book: each checkpoint against the one before it and the fills
        journaled between them. The seed a new journal begins with (its first checkpoint, :meth:`book_start`) is
        the broker's positions whatever was journaled before it: all of it moved.
        """
        bound = " AND time < ?" if before is not None else ""
        # The periodic checkpoints, most of them, are left in SQLite's thread: the book as the fills make it.
        rows = await self._all("SELECT id, kind, time, payload FROM events WHERE kind = 'OrderFilled' OR "
                               f"(kind = 'BookCheckpointed' AND payload NOT LIKE ?{bound}) ORDER BY id",
                               (PERIODIC_LIKE, *_utc_bound(before)))
        held: dict[str, float] = defaultdict(float)
        adjustments: list[BookAdjustment] = []
        preceding: dict[str, int] = {}
        first = await self._one("SELECT MIN(id) FROM events WHERE kind = 'BookCheckpointed'")
        # Read with json, not the codec: only the figures (a payload may hold NaN: not SQL's JSON).
        for row_id, kind, time, payload in rows:
            if kind == "OrderFilled":
                fill = json.loads(payload)["fill"]
                if fill["exec_id"] not in preceding:
                    preceding[fill["exec_id"]] = len(adjustments)
                    held[fill["symbol"]] += _signed(fill)
                continue
            checkpoint = json.loads(payload)
            if row_id == first[0] and checkpoint.get("reason") == ev.BOOK_SEEDED:
                held.clear()
            adjustment = _adjustment(datetime.fromisoformat(time), checkpoint, held)
            if adjustment.moved:
                adjustments.append(adjustment)
        return BookAdjustments(tuple(adjustments), preceding)

    async def book_start(self) -> BookStart | None:
        """Where the journal's book began: its first checkpoint when that is the seed a new journal writes
        (:data:`~tui_trader.domain.events.BOOK_SEEDED`); ``None`` for a journal that began otherwise (one written
        before seeds were, or with no checkpoint yet).

        By id, not time: a clock stepped back must not make a later checkpoint the first. The seed's positions are
        the broker's, every execution before them included; so are the fills an earlier version booked before the
        seed from the broker's executions of the day (another run's): named in ``journaled_before``.
        """
        row = await self._one("SELECT id, payload FROM events WHERE id = "
                              "(SELECT MIN(id) FROM events WHERE kind = 'BookCheckpointed')")
        if row is None:
            return None
        seed = json.loads(row[1])
        if seed.get("reason") != ev.BOOK_SEEDED:
            return None
        state = seed["state"]
        # Read with json, not the codec: only the ids (a payload may hold NaN: not SQL's JSON).
        before = await self._all("SELECT payload FROM events WHERE kind = 'OrderFilled' AND id < ?", (row[0],))
        return BookStart(frozenset(state.get(ev.EXECUTIONS_BEFORE, ())),
                         frozenset(json.loads(p)["fill"]["exec_id"] for (p,) in before))

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


def _adjustment(when: datetime, checkpoint: dict[str, Any], held: dict[str, float]) -> BookAdjustment:
    """The checkpoint's positions beyond ``held`` (each symbol's quantity the journal made so far), which then
    become what is held."""
    book = checkpoint["state"]
    positions = {s: (float(p[0]), float(p[1])) for s, p in book.get("positions", {}).items()}
    moved = {}
    for symbol in sorted({*held, *positions}):
        quantity, cost = positions.get(symbol, (0.0, 0.0))
        if abs(quantity - held.get(symbol, 0.0)) > 1e-9:
            moved[symbol] = (quantity - held.get(symbol, 0.0), cost)
    held.clear()
    held.update({symbol: quantity for symbol, (quantity, _) in positions.items()})
    return BookAdjustment(when, checkpoint.get("reason", ""), moved,
                          {s: str(o) for s, o in book.get("owners", {}).items()})


def _signed(fill: dict[str, Any]) -> float:
    """The signed quantity of a fill read with json from its ``OrderFilled`` payload."""
    return float(fill["quantity"] if fill["side"] == "BUY" else -fill["quantity"])


def _fill_from_row(row: Any) -> Fill:
    exec_id, ref, symbol, side, qty, price, time, broker_id, commission, pnl, perm_id = row
    return codec.load(Fill, codec_json({
        "exec_id": exec_id, "order_ref": ref, "symbol": symbol, "side": side, "quantity": qty,
        "price": price, "time": time, "broker_id": broker_id, "commission": commission, "realized_pnl": pnl,
        "perm_id": perm_id,
    }))
