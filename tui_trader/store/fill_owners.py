"""Which order a fill journaled without its order's permanent id filled, as far as the journal can say for certain.

A fill row written before schema 4 has no ``perm_id`` (and one written since has none when the broker gave none).
Its order is certain when:

- the event log ties its execution to a permanent id: its ``OrderFilled`` payload carries the fill's ``perm_id``
  (journaled there before the ``fills`` table had the column), or
- exactly one order was ever journaled under its orderRef (counting the others the engine adopted under it as
  ``<orderRef>#<permId>``, and every permanent id the ref's own updates carried: a row later taken over by another
  order under the same ref), that order is of the fill's symbol and side, and, both known, of its order id.

Anything else is not guessed: the fill keeps no permanent id, and :attr:`FillOwner.doubt` says why its order is
uncertain (several orders under its orderRef, or the one there does not match it). A fill under a ref no order was
journaled under is an unknown order's, with no doubt to say between orders.

Used by the migration to schema 5 (:func:`backfill`) and, with the same rule, by a read-only reader of an older
file (:meth:`~tui_trader.store.queries.JournalQueries.fills`), which never migrates it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiosqlite

from tui_trader.domain.orders import SHARED_REF_SEP, base_ref

CHUNK = 400
"""Refs per ``IN (…)`` query (SQLite's default limit on host parameters is 999 on older builds)."""


_KIND = "+kind"
"""The event kind in a query by orderRef: ``+`` keeps SQLite on the orderRef index (on the kind's, without
statistics, it chose, each chunk of refs read every event of the kind: seconds for a journal of 20,000 fills)."""


class FillRow(NamedTuple):
    """What the rule reads of a fill row."""

    exec_id: str
    order_ref: str
    symbol: str
    side: str
    broker_id: int | None


@dataclass(frozen=True, slots=True)
class FillOwner:
    """What the journal says of the order of a fill journaled without its permanent id."""

    perm_id: int | None = None
    """The permanent id of the order it filled, when certain."""
    doubt: str = ""
    """Why the journal cannot tell which order filled it; empty when it can (or no order was journaled under its
    ref)."""


@dataclass
class _Journaled:
    """One ref's orders as its journaled updates tell them: its permanent ids (one per order placed under it)."""

    name: str
    perm_ids: set[int] = field(default_factory=set)
    broker_ids: set[int] = field(default_factory=set)
    symbol: str = ""
    side: str = ""

    def add(self, order: dict[str, Any]) -> None:
        if order.get("perm_id"):
            self.perm_ids.add(int(order["perm_id"]))
        if order.get("broker_id"):
            self.broker_ids.add(int(order["broker_id"]))
        ticket = order.get("ticket") or {}
        self.symbol, self.side = ticket.get("symbol", self.symbol), ticket.get("side", self.side)

    def orders(self) -> list[tuple[str, int | None]]:
        """(name, permanent id) of each order told apart: one without a known permanent id when none was journaled."""
        return [(self.name, p) for p in sorted(self.perm_ids)] or [(self.name, None)]


async def owners(conn: aiosqlite.Connection, fills: Sequence[FillRow]) -> dict[str, FillOwner]:
    """The owner of each of ``fills`` (rows without a permanent id), by execution id."""
    if not fills:
        return {}
    refs = sorted({f.order_ref for f in fills})
    said = await _perm_ids_logged(conn, refs)
    journaled = await _journaled_under(conn, refs)
    return {f.exec_id: _owner(f, said.get(f.exec_id), journaled.get(f.order_ref, [])) for f in fills}


async def backfill(conn: aiosqlite.Connection) -> int:
    """Set ``fills.perm_id`` where the journal says it for certain (schema 5's data step); how many rows it set."""
    async with conn.execute("SELECT exec_id, order_ref, symbol, side, broker_id FROM fills WHERE perm_id IS NULL") \
            as cur:
        rows = [FillRow(*r) for r in await cur.fetchall()]
    certain = [(o.perm_id, exec_id) for exec_id, o in (await owners(conn, rows)).items() if o.perm_id]
    await conn.executemany("UPDATE fills SET perm_id = ? WHERE exec_id = ? AND perm_id IS NULL", certain)
    return len(certain)


def _owner(fill: FillRow, logged: int | None, journaled: list[_Journaled]) -> FillOwner:
    if logged:
        return FillOwner(logged)
    orders = [o for j in journaled for o in j.orders()]
    if not orders:
        return FillOwner()
    if len(orders) > 1:
        names = ", ".join(name if perm is None else f"{name} (permId {perm})" for name, perm in orders)
        return FillOwner(doubt=f"{len(orders)} orders were journaled under orderRef {fill.order_ref}: {names}")
    (one,) = journaled
    if (one.symbol, one.side) != (fill.symbol, fill.side):
        return FillOwner(doubt=f"the order journaled under orderRef {fill.order_ref} is a {one.side} of {one.symbol}")
    if fill.broker_id and one.broker_ids and fill.broker_id not in one.broker_ids:
        ids = ", ".join(map(str, sorted(one.broker_ids)))
        return FillOwner(doubt=f"the order journaled under orderRef {fill.order_ref} had order id {ids}, the "
                               f"execution {fill.broker_id}")
    return FillOwner(orders[0][1])


async def _perm_ids_logged(conn: aiosqlite.Connection, refs: list[str]) -> dict[str, int]:
    """Each execution's permanent id as its ``OrderFilled`` line carries it (read with json: a payload may hold NaN,
    which SQL's JSON functions refuse)."""
    said: dict[str, int] = {}
    for payload in await _payloads(conn, "OrderFilled", refs):
        fill = json.loads(payload).get("fill") or {}
        if fill.get("perm_id"):
            said[fill["exec_id"]] = int(fill["perm_id"])
    return said


async def _journaled_under(conn: aiosqlite.Connection, refs: list[str]) -> dict[str, list[_Journaled]]:
    """The orders journaled under each of ``refs``: its own, and those adopted under it as ``<ref>#<permId>``."""
    names: dict[str, list[str]] = {ref: [ref] for ref in refs}
    async with conn.execute("SELECT order_ref FROM orders WHERE instr(order_ref, ?) > 0", (SHARED_REF_SEP,)) as cur:
        for (adopted,) in await cur.fetchall():
            shared = base_ref(adopted)
            if shared in names and shared != adopted:
                names[shared].append(adopted)
    known = {name: _Journaled(name) for group in names.values() for name in group}
    every = sorted(known)
    for chunk in _chunks(every):
        async with conn.execute(f"SELECT order_ref, payload FROM orders WHERE order_ref IN ({_marks(chunk)})",
                                chunk) as cur:
            for name, payload in await cur.fetchall():
                known[name].add(json.loads(payload))
    for chunk in _chunks(every):
        sql = f"SELECT order_ref, payload FROM events WHERE order_ref IN ({_marks(chunk)}) AND {_KIND} = 'OrderUpdated'"
        async with conn.execute(sql, chunk) as cur:
            for name, payload in await cur.fetchall():
                known[name].add(json.loads(payload).get("order") or {})
    seen = {name for name, j in known.items() if j.symbol}  # a ref with nothing journaled under it has no order
    return {ref: [known[n] for n in group if n in seen] for ref, group in names.items()}


async def _payloads(conn: aiosqlite.Connection, kind: str, refs: list[str]) -> list[str]:
    payloads: list[str] = []
    for chunk in _chunks(refs):
        sql = f"SELECT payload FROM events WHERE order_ref IN ({_marks(chunk)}) AND {_KIND} = ?"
        async with conn.execute(sql, (*chunk, kind)) as cur:
            payloads += [r[0] for r in await cur.fetchall()]
    return payloads


def _chunks(items: list[str]) -> Iterable[list[str]]:
    return (items[i:i + CHUNK] for i in range(0, len(items), CHUNK))


def _marks(chunk: list[str]) -> str:
    return ",".join("?" * len(chunk))
