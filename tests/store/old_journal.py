"""Journals written as older tui-trader versions wrote them, for the migration and read-only reading tests.

:func:`create_schema` makes the tables of any schema version (the current one included) in a file;
:func:`write_old_journal` fills a file of an older version with events, as that version wrote them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from tui_trader.domain import events as ev
from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import Fill, Order, OrderTicket
from tui_trader.store.derive import rows_for
from tui_trader.store.schema import MIGRATIONS

_FILL_WITHOUT_PERM = ("INSERT OR IGNORE INTO fills(exec_id, order_ref, symbol, side, quantity, price, time, broker_id, "
                      "commission, realized_pnl) VALUES (?,?,?,?,?,?,?,?,?,?)")


def create_schema(conn: sqlite3.Connection, version: int) -> None:
    """The tables of schema ``version`` (its ``user_version`` too), as the journal of that version made them."""
    for number, script in enumerate(MIGRATIONS[:version]):
        conn.executescript(f"BEGIN; {script} PRAGMA user_version = {number + 1}; COMMIT;")


def write_old_journal(path: Path, version: int, events: Iterable[ev.Event]) -> None:
    """A journal of schema ``version`` (3: no ``fills.perm_id``; 4: the column, NULL in the rows written before it)
    holding ``events``, each written as the engine writes it but for the fill row, which has no permanent id.

    An ``OrderFilled`` line keeps its fill's permanent id when it has one: versions from 0191d10 on journaled it there
    before the table had its column."""
    conn = sqlite3.connect(path)
    try:
        create_schema(conn, version)
        for event in events:
            for sql, params in rows_for(event):
                old = sql.startswith("INSERT OR IGNORE INTO fills")
                conn.execute(_FILL_WITHOUT_PERM if old else sql, params[:-1] if old else params)
        conn.commit()
    finally:
        conn.close()


def order(ref: str, symbol: str, side: Side, qty: float, when: datetime, strategy: str, perm_id: int | None,
          broker_id: int, status: OrderStatus = OrderStatus.FILLED) -> Order:
    """An order as journaled."""
    ticket = OrderTicket(symbol, side, qty, OrderType.LMT, limit_price=1.0, strategy=strategy, created_at=when)
    return Order(ref, ticket, status, when, when, broker_id=broker_id, perm_id=perm_id)


def filled(exec_id: str, ref: str, o: Order, qty: float, price: float, when: datetime,
           perm_id: int | None = None) -> ev.OrderFilled:
    """An execution of ``o``'s symbol and side under ``ref``, journaled at ``when`` with its payload's ``perm_id``."""
    t = o.ticket
    return ev.OrderFilled(when, Fill(exec_id, ref, t.symbol, t.side, qty, price, when, o.broker_id, commission=1.0,
                                     perm_id=perm_id), None)


def shared_ref_events(at: dict[str, datetime]) -> list[ev.Event]:
    """A day of fills whose orders an old journal tells, or cannot tell, apart (times from ``at`` by "HH:MM").

    - ``x1``: tt1-1 (ema_cross, permId 901), the only order under its ref: certain (901).
    - ``x2``: under another tool's ``bot1`` (bot1 is permId 11), its line carries permId 22: bot1#22's.
    - ``x3``: under ``bot1`` without a permanent id, while bot1 (11) and bot1#22 (22) were journaled: uncertain.
    - ``x4``: under ``bot2``, whose row a later ``bot2`` took over (permIds 5 then 6): uncertain.
    - ``x5``: tt1-2 (macd), its line carries permId 902.
    - ``x6``: under tt1-3, a BUY of NVDA, but a SELL: not that order's; uncertain.
    """
    ema = order("tt1-1", "AAPL", Side.BUY, 10, at["10:00"], "ema_cross", 901, 1)
    bot1 = order("bot1", "AAPL", Side.SELL, 6, at["10:10"], "adopted", 11, 50)
    bot1_22 = order("bot1#22", "AAPL", Side.SELL, 4, at["10:10"], "adopted", 22, 51, OrderStatus.SUBMITTED)
    bot2_first = order("bot2", "MSFT", Side.BUY, 5, at["09:00"], "adopted", 5, 60, OrderStatus.SUBMITTED)
    bot2_later = order("bot2", "MSFT", Side.BUY, 5, at["10:50"], "adopted", 6, 60, OrderStatus.SUBMITTED)
    macd = order("tt1-2", "MSFT", Side.SELL, 5, at["11:30"], "macd", 902, 2)
    nvda = order("tt1-3", "NVDA", Side.BUY, 2, at["11:50"], "macd", 903, 3)
    updates = [ev.OrderUpdated(o.created_at, o, OrderStatus.SUBMITTED)
               for o in (ema, bot1, bot1_22, bot2_first, bot2_later, macd, nvda)]
    nvda_sell = Order("tt1-3", OrderTicket("NVDA", Side.SELL, 2), OrderStatus.FILLED, at["12:00"], at["12:00"],
                      broker_id=3)
    return [*updates,
            filled("x1", "tt1-1", ema, 10, 100.0, at["10:00"]),
            filled("x2", "bot1", bot1_22, 4, 103.0, at["10:20"], perm_id=22),
            filled("x3", "bot1", bot1, 6, 104.0, at["10:30"]),
            filled("x4", "bot2", bot2_later, 5, 50.0, at["11:00"]),
            filled("x5", "tt1-2", macd, 5, 51.0, at["11:30"], perm_id=902),
            filled("x6", "tt1-3", nvda_sell, 2, 10.0, at["12:00"])]
