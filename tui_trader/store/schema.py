"""Journal schema and its migrations; ``PRAGMA user_version`` holds the applied version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosqlite

from tui_trader.store import fill_owners

MIGRATIONS: tuple[str, ...] = (
    # 1: the append-only event log and the tables derived from it.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        order_ref TEXT,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_kind_time ON events(kind, time);
    CREATE INDEX events_order_ref ON events(order_ref) WHERE order_ref IS NOT NULL;
    CREATE TABLE orders (
        order_ref TEXT PRIMARY KEY,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity REAL NOT NULL,
        order_type TEXT NOT NULL,
        status TEXT NOT NULL,
        strategy TEXT NOT NULL,
        broker_id INTEGER,
        parent_ref TEXT,
        filled_quantity REAL NOT NULL DEFAULT 0,
        avg_fill_price REAL NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX orders_status ON orders(status);
    CREATE TABLE order_states (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        order_ref TEXT NOT NULL,
        status TEXT NOT NULL,
        time TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX order_states_ref ON order_states(order_ref);
    CREATE TABLE fills (
        exec_id TEXT PRIMARY KEY,
        order_ref TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        time TEXT NOT NULL,
        broker_id INTEGER,
        commission REAL,
        realized_pnl REAL
    );
    CREATE INDEX fills_time ON fills(time);
    CREATE TABLE operator_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        why TEXT NOT NULL,
        before TEXT NOT NULL DEFAULT '',
        after TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE kill_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        engaged INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        level TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE TABLE daily_summaries (
        day TEXT PRIMARY KEY,
        payload TEXT NOT NULL
    );
    """,
    # 2: the write-ahead record of an order family before it goes on the wire (tui_trader/store/sending.py).
    """
    CREATE TABLE sending (
        id INTEGER PRIMARY KEY,
        order_ref TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        broker_id INTEGER,
        perm_id INTEGER,
        parent_ref TEXT,
        filled_quantity REAL NOT NULL,
        avg_fill_price REAL NOT NULL,
        commission REAL NOT NULL,
        last_error TEXT NOT NULL,
        history TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity REAL NOT NULL,
        order_type TEXT NOT NULL,
        limit_price REAL,
        stop_price REAL,
        trail_amount REAL,
        trail_percent REAL,
        tif TEXT NOT NULL,
        outside_rth INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        reason TEXT NOT NULL,
        signal_price REAL,
        ticket_created_at TEXT,
        reduce_only INTEGER NOT NULL,
        bracket INTEGER NOT NULL,
        bracket_stop_price REAL,
        bracket_take_profit_price REAL,
        bracket_trail_amount REAL,
        bracket_trail_percent REAL
    );
    """,
    # 3: the record is now appended to the sending log before the wire and folded into this table
    # later, maybe more than once: one row per order and history (tui_trader/store/sending.py).
    """
    DELETE FROM sending WHERE id NOT IN (SELECT MIN(id) FROM sending GROUP BY order_ref, history);
    CREATE UNIQUE INDEX sending_record ON sending(order_ref, history);
    """,
    # 4: the broker's permanent id of the order each fill filled: another tool may give several orders one orderRef,
    # and a fill read back matched its order by that ref alone (NULL in the rows written before: matched so still).
    """
    ALTER TABLE fills ADD COLUMN perm_id INTEGER;
    """,
    # 5: data only (DATA_STEPS): the fills written before 4 get their order's permanent id where the journal says it
    # for certain (tui_trader/store/fill_owners.py); the others keep none.
    "",
)

SCHEMA_VERSION = len(MIGRATIONS)

Step = Callable[[aiosqlite.Connection], Awaitable[object]]
"""A data step: rewrites rows in Python (:data:`DATA_STEPS`)."""

FILL_PERM_IDS = 4
"""The schema from which the ``fills`` table has its ``perm_id`` column."""
BACKFILLED = 5
"""The schema from which the ``fills`` rows hold every permanent id the journal knows for certain."""
DATA_STEPS: dict[int, Step] = {BACKFILLED: fill_owners.backfill}
"""The migrations (by the version they make) that also rewrite rows in Python: after the step's SQL, in the same
transaction as the version."""


async def migrate(conn: aiosqlite.Connection, migrations: tuple[str, ...] = MIGRATIONS,
                  data_steps: dict[int, Step] | None = None) -> int:
    """Apply the migrations the file has not seen yet; returns the schema version.

    Each is one transaction: its SQL, then its data step (:data:`DATA_STEPS`) if it has one, then the version. The
    arguments are this version's schema unless given (a test gives a newer one).
    """
    steps = DATA_STEPS if data_steps is None else data_steps
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    newest = len(migrations)
    if version > newest:
        raise RuntimeError(f"journal schema {version} is newer than this tui-trader ({newest})")
    for number in range(version, newest):
        await _step(conn, migrations[number], steps.get(number + 1), number + 1)
    return newest


async def _step(conn: aiosqlite.Connection, sql: str, data: Step | None, version: int) -> None:
    """Run ``sql``, then ``data``, and set ``version`` in one transaction: a step cut short leaves the file at the
    version before, with none of its changes."""
    try:
        # executescript: the SQL may hold several statements; it begins the transaction the rest runs in.
        await conn.executescript(f"BEGIN IMMEDIATE; {sql}")
        if data is not None:
            await data(conn)
        await conn.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
