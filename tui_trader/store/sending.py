"""The write-ahead record of an order family going to the broker: a line in the sending log.

Before an order's bytes go on the wire, the order path appends its family as it is then
(SENDING, with its orderRefs) to ``<journal>-sending``, next to SQLite's ``-wal`` and ``-shm``:
one line of JSON (the rows below, in :data:`COLUMNS` order) in one ``write`` to a file opened
for appending. Once ``write`` returns the line survives a SIGKILL (the OS holds the page; only a
power loss can lose it, the guarantee a WAL commit with ``synchronous=NORMAL`` gives). It is the
cheapest durable record there is: a SQLite commit of the same row cost ≈0.17 ms before each
send with caches cold (its locks, pages and WAL frames), the line ≈0.08 ms
(``benchmarks/README.md``, tick-to-order). The ``orders`` table is kept by the event log's
batches, which follow within milliseconds.

The journal's readers read the table's rows and the log's (:func:`read_log`) alike, so a
read-only journal (``tui-trader report``, ``trace``) sees every record without writing. The log
is folded into the ``sending`` table (``INSERT OR IGNORE``: folding twice changes nothing) when a
journal opens for writing. A line the process died while writing has no newline
(nothing was sent after it: the send comes after the write) and is skipped. The journal that
appends rotates the log when it grows past :data:`ROTATE_BYTES`: it moves it aside, folds the
moved file into the table and only then deletes it.

Reading: a row here is the newest thing the journal knows about its order unless the order's
``orders`` row has caught up with it, that is holds at least as many steps of the order's history
(histories only grow). An ``orders`` row may well exist and be *older*: an order that waited for
approval was written PENDING_APPROVAL and APPROVED by earlier batches, and a resubmit follows an
UNKNOWN row; if the process dies before the batch after the send, the record here is the truth
(the order may be at the broker) and the journal's readers return it. Superseded rows are pruned
when the journal opens.

The table is created by the journal's migrations 2 and 3 (:mod:`tui_trader.store.schema`).
"""

from __future__ import annotations

import json
import json.encoder
import logging
import math
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_trader.domain.enums import FINAL_STATUSES, OrderStatus, OrderType, Side, TimeInForce
from tui_trader.domain.orders import Bracket, Order, OrderTicket, StatusChange
from tui_trader.store import codec

ORDER_FIELDS = ("order_ref", "status", "created_at", "updated_at", "broker_id", "perm_id", "parent_ref",
                "filled_quantity", "avg_fill_price", "commission", "last_error", "history", "ticket")
TICKET_FIELDS = ("symbol", "side", "quantity", "order_type", "limit_price", "stop_price", "trail_amount",
                 "trail_percent", "tif", "outside_rth", "strategy", "reason", "signal_price", "created_at",
                 "reduce_only", "bracket")
BRACKET_FIELDS = ("stop_price", "take_profit_price", "trail_amount", "trail_percent")
"""The fields a row holds, by dataclass (a test checks they are every field of each)."""

COLUMNS = ("order_ref", "status", "created_at", "updated_at", "broker_id", "perm_id", "parent_ref",
           "filled_quantity", "avg_fill_price", "commission", "last_error", "history", "symbol", "side",
           "quantity", "order_type", "limit_price", "stop_price", "trail_amount", "trail_percent", "tif",
           "outside_rth", "strategy", "reason", "signal_price", "ticket_created_at", "reduce_only", "bracket",
           "bracket_stop_price", "bracket_take_profit_price", "bracket_trail_amount", "bracket_trail_percent")
_ONE = "(" + ",".join("?" * len(COLUMNS)) + ")"
INGEST_SQL = f"INSERT OR IGNORE INTO sending({', '.join(COLUMNS)}) VALUES {_ONE}"
"""One row of the log into the table (a row already there, same order and history, is left as it is)."""
LOG_SUFFIX = "-sending"
ROTATE_BYTES = 256 * 1024
"""The appending journal moves the log aside, folds it into the table and deletes it past this size
(a few hundred families; folding them takes milliseconds, in aiosqlite's thread)."""
log = logging.getLogger(__name__)


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps`` with its default settings, its C encoder built once rather than per call.

    ``json.dumps`` runs three Python functions and builds that encoder on each call; the record is
    encoded right before each order goes on the wire, where with caches cold that set-up cost
    ≈40 µs of ≈105. Same text byte for byte (a test compares them); without the C accelerator, or
    should its private signature change, this is ``json.dumps`` itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)  # private: not in the stubs, and None without C
    if make is None:
        return json.dumps
    try:
        encode = make(None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                      False, False, True)  # markers (no cycle check: rows are flat), default, ..., allow_nan
    except TypeError:
        return json.dumps
    return lambda value: "".join(encode(value, 0))


_dumps = _json_encoder()

_FINAL = ", ".join(f"'{s.value}'" for s in sorted(FINAL_STATUSES))
PENDING_SQL = (f"SELECT s.id, {', '.join('s.' + c for c in COLUMNS)}, o.status IN ({_FINAL}), "
               f"CASE WHEN o.status IN ({_FINAL}) THEN NULL ELSE o.payload END "
               "FROM sending s LEFT JOIN orders o ON o.order_ref = s.order_ref")
"""Every write-ahead row (append ``ORDER BY s.id`` or a filter): its id, its columns, whether its order's
``orders`` row is final (NULL: there is none) and that row's payload when it is not final. A final
row always postdates the send (SENDING never follows a final state); any other is compared by its
history in Python (the payloads hold NaN, which SQLite's JSON functions reject)."""
JOURNALED_SQL = (f"SELECT order_ref, status IN ({_FINAL}), CASE WHEN status IN ({_FINAL}) THEN NULL ELSE payload END "
                 "FROM orders WHERE order_ref IN ({})")
"""For the log's rows: what :data:`PENDING_SQL` joins to a table row, by ref (``{}``: the placeholders)."""
PENDING_ALL_SQL = PENDING_SQL + " ORDER BY s.id"
PENDING_OF_REF_SQL = PENDING_SQL + " WHERE s.order_ref = ? ORDER BY s.id"
PRUNE_SQL = "DELETE FROM sending WHERE id = ?"
"""Drop one row the event log has caught up with (:func:`superseded` lists them)."""


def log_path(journal: Path) -> Path:
    """The sending log of the journal at ``journal`` (``journal.sqlite-sending``)."""
    return journal.with_name(journal.name + LOG_SUFFIX)


def rotated_path(journal: Path) -> Path:
    """Where the appending journal moves the log before folding it into the table."""
    return journal.with_name(journal.name + LOG_SUFFIX + ".1")


def record(orders: Sequence[Order]) -> bytes:
    """One family's line: its rows as a JSON array, newline-terminated."""
    return (_dumps(rows(orders)) + "\n").encode()


class SendingLog:
    """Appends the journal's write-ahead records (the file is opened at the first one).

    Args:
        journal: The journal's file; the log is :func:`log_path` of it.
    """

    def __init__(self, journal: Path, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.path, self.rotated = log_path(journal), rotated_path(journal)
        self.size = 0
        """Bytes in the log (known once this journal appended)."""
        self.rotate_bytes = rotate_bytes
        """The size past which the journal rotates the log."""
        self._fd: int | None = None
        self._torn = False

    @property
    def appending(self) -> bool:
        """This journal has appended to the log (it is the engine's: it also rotates the log)."""
        return self._fd is not None

    def append(self, orders: Sequence[Order]) -> None:
        """Append ``orders``' record; it is durable across a SIGKILL when this returns.

        Raises:
            OSError: the write failed or was short (disk full): the record is not durable.
        """
        data = record(orders)
        if self._fd is None:
            self._open()
        if self._torn:  # the last write was cut short: end its line so this one stands alone
            data = b"\n" + data
        written = os.write(self._fd, data)  # type: ignore[arg-type]
        self.size += written
        self._torn = written != len(data)
        if self._torn:
            raise OSError(f"sending log: short write ({written} of {len(data)} bytes) to {self.path}")

    def rotate(self) -> None:
        """Move the log to :func:`rotated_path` (the next record starts a new one), unless a moved log
        is still waiting to be folded there (or there is nothing to move)."""
        if self.size == 0 or self.rotated.exists():
            return
        self.close()
        os.replace(self.path, self.rotated)
        self.size = 0

    def close(self) -> None:
        """Close the file (the next record reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        size = os.fstat(fd).st_size
        # A record a dead process was writing has no newline: the next one must not run on from it.
        self._torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        self._fd, self.size = fd, size


def read_log(journal: Path) -> list[tuple[Any, ...]]:
    """The rows of every complete record in ``journal``'s sending logs, the moved one first.

    A last line without its newline was being written when the process died; its order was not
    sent (the send follows the write) and it is skipped, as is a line that does not parse as a
    record (logged: it cannot be folded, and must not stop the journal from opening).
    """
    rows: list[tuple[Any, ...]] = []
    for path in (rotated_path(journal), log_path(journal)):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        for number, line in enumerate(data.split(b"\n")[:-1], 1):
            if not line:
                continue
            try:
                family = [tuple(row) for row in json.loads(line)]
                if any(len(row) != len(COLUMNS) for row in family):
                    raise ValueError(f"rows of {len(COLUMNS)} values expected")
            except (ValueError, TypeError) as exc:
                log.error("sending log %s line %d unreadable, skipped: %s", path, number, exc)
                continue
            rows += family
    return rows


def rows(orders: Sequence[Order]) -> list[tuple[Any, ...]]:
    """The rows of ``orders`` in :data:`COLUMNS` order (for :data:`INGEST_SQL`, or a record)."""
    return [_values(o) for o in orders]


def _values(o: Order) -> tuple[Any, ...]:
    t, b = o.ticket, o.ticket.bracket
    # One isoformat per time object: an order born in SENDING has the same one as created, updated and last step.
    updated = o.updated_at.isoformat()
    created = updated if o.created_at is o.updated_at else o.created_at.isoformat()
    ticket_created = t.created_at.isoformat() if t.created_at is not None else None
    # The enums are StrEnums: JSON and SQLite write a member as its value (``.value`` is Python code in
    # ``enum``, the only reason that module's pages would be touched before the wire).
    return (
        o.order_ref, o.status, created, updated, o.broker_id, o.perm_id,
        o.parent_ref, o.filled_quantity, o.avg_fill_price, o.commission, o.last_error, _history(o, updated),
        t.symbol, t.side, t.quantity, t.order_type, t.limit_price, t.stop_price, t.trail_amount,
        t.trail_percent, t.tif, t.outside_rth, t.strategy, t.reason, t.signal_price, ticket_created,
        t.reduce_only,
        b is not None, *((b.stop_price, b.take_profit_price, b.trail_amount, b.trail_percent) if b else (None,) * 4),
    )  # fmt: skip


def _history(o: Order, updated: str) -> str:
    """The history as ``json.dumps`` writes it: ``[["SENDING", "<iso time>", "<note>"], ...]``."""
    return _dumps([[h.status, updated if h.time is o.updated_at else h.time.isoformat(), h.note] for h in o.history])


def order_of(row: Sequence[Any]) -> Order:
    """The order a row (in :data:`COLUMNS` order) was written from."""
    (ref, status, created_at, updated_at, broker_id, perm_id, parent_ref, filled, avg_price, commission,
     last_error, history, symbol, side, quantity, order_type, limit_price, stop_price, trail_amount,
     trail_percent, tif, outside_rth, strategy, reason, signal_price, ticket_created_at, reduce_only,
     has_bracket, b_stop, b_take_profit, b_trail_amount, b_trail_percent) = row  # fmt: skip
    bracket = Bracket(b_stop, b_take_profit, b_trail_amount, b_trail_percent) if has_bracket else None
    ticket = OrderTicket(
        symbol, Side(side), quantity, OrderType(order_type), limit_price, stop_price, trail_amount, trail_percent,
        TimeInForce(tif), bool(outside_rth), strategy, reason, bracket,
        math.nan if signal_price is None else signal_price,  # SQLite stores NaN as NULL
        _when(ticket_created_at), bool(reduce_only),
    )  # fmt: skip
    steps = tuple(StatusChange(OrderStatus(s), datetime.fromisoformat(t), n) for s, t, n in json.loads(history))
    return Order(ref, ticket, OrderStatus(status), datetime.fromisoformat(created_at),
                 datetime.fromisoformat(updated_at), broker_id, perm_id, parent_ref, filled, avg_price, commission,
                 last_error, steps)


def pending_of(rows: Iterable[Sequence[Any]]) -> list[Order]:
    """The orders of :data:`PENDING_SQL`'s rows not caught up by their ``orders`` row (the newest row of a ref wins)."""
    found: dict[str, Order] = {}
    for _, order, journaled in map(_split, rows):
        if not _caught_up(journaled, order):
            found[order.order_ref] = order
    return list(found.values())


def superseded(rows: Iterable[Sequence[Any]]) -> list[int]:
    """The ids of :data:`PENDING_SQL`'s rows whose ``orders`` row has caught up (to prune)."""
    return [row_id for row_id, order, journaled in map(_split, rows) if _caught_up(journaled, order)]


def _split(row: Sequence[Any]) -> tuple[int, Order, tuple[Any, str | None]]:
    return row[0], order_of(row[1:-2]), (row[-2], row[-1])


def _caught_up(journaled: tuple[Any, str | None], order: Order) -> bool:
    """The order's ``orders`` row was written at or after this SENDING record (it holds at least its steps)."""
    final, payload = journaled
    if final is None:  # no ``orders`` row yet
        return False
    return bool(final) or (payload is not None and len(codec.load(Order, payload).history) >= len(order.history))


def pending(conn: sqlite3.Connection) -> list[Order]:
    """The orders whose write-ahead record is the newest the file holds (a synchronous read)."""
    return pending_of(conn.execute(PENDING_ALL_SQL).fetchall())


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
