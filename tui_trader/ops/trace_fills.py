"""Which journaled order each fill filled, for the report and the trace: the engine's rule, not the orderRef alone.

Another tool (or a TWS user) may place several orders under one fixed orderRef (``bot1``); the engine tracks each as
an order of its own (the first as ``bot1``, the others as ``bot1#<permId>``) and books a fill by its ref unless both
permanent ids are known and differ (:meth:`~tui_trader.domain.orders.Order.may_be`), then by its permanent id. A fill
of an order never tracked is journaled under the broker's orderRef: read by that ref alone, it counted as the
tracked ``bot1``'s (its strategy, its trade, its trace). A fill without a permanent id whose orderRef the journal
cannot tie to one order (:meth:`~tui_trader.store.queries.JournalQueries.fill_doubts`) is said to be uncertain,
never given to one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tui_trader.domain.orders import Fill, Order, order_of, shared_ref_name

UNCERTAIN = "uncertain"
"""The strategy of a fill whose order is uncertain; its order is named ``<orderRef>#?``."""
UNKNOWN = "unknown"
"""The strategy of a fill of an order the journal never held."""
UNSURE_KEY = "?"
"""The key of the name of a fill's order when which order under its orderRef it is is uncertain: ``bot1#?``."""


@dataclass(frozen=True, slots=True)
class FillOrder:
    """The order a fill filled, as the journal tells it."""

    name: str
    """The order's ref; ``<orderRef>#<permId>`` for another order under the fill's orderRef, never journaled;
    ``<orderRef>#?`` when which order under it is uncertain."""
    order: Order | None = None
    """The journaled order; ``None``: none the journal holds (or none certain)."""
    doubt: str = ""
    """Why the order is uncertain; empty when it is not."""

    @property
    def strategy(self) -> str:
        """The order's strategy; :data:`UNCERTAIN` or :data:`UNKNOWN` without one."""
        if self.order is not None:
            return self.order.ticket.strategy
        return UNCERTAIN if self.doubt else UNKNOWN


class FillOrders:
    """The journal's orders indexed as the engine finds a fill's (by ref unless the permanent ids differ, then by
    permanent id), with the doubts of the fills whose order the journal cannot tell."""

    def __init__(self, orders: Iterable[Order], doubts: dict[str, str], fills: Iterable[Fill] = ()) -> None:
        """``fills``: as the ``fills`` table holds them, whose permanent ids count for the same executions read
        elsewhere (an ``OrderFilled`` line written before the backfill gave its row one)."""
        self.by_ref: dict[str, Order] = {}
        self.by_perm: dict[int, Order] = {}
        for order in orders:
            self.by_ref[order.order_ref] = order
            if order.perm_id:
                self.by_perm.setdefault(order.perm_id, order)
        self.doubts = doubts
        self.perm_ids = {f.exec_id: f.perm_id for f in fills if f.perm_id}

    def of(self, fill: Fill) -> FillOrder:
        """The order ``fill`` filled (:func:`~tui_trader.domain.orders.order_of`, the engine's rule)."""
        perm_id = fill.perm_id or self.perm_ids.get(fill.exec_id)
        if perm_id:
            order = order_of(fill.order_ref, perm_id, self.by_ref.get, self.by_perm.get)
            if order is not None:
                return FillOrder(order.order_ref, order)
            taken = fill.order_ref in self.by_ref
            return FillOrder(shared_ref_name(fill.order_ref, perm_id) if taken else fill.order_ref)
        doubt = self.doubts.get(fill.exec_id, "")
        if doubt:
            return FillOrder(shared_ref_name(fill.order_ref, UNSURE_KEY), None, doubt)
        return FillOrder(fill.order_ref, self.by_ref.get(fill.order_ref))

    def fills_it(self, fill: Fill, order: Order) -> bool:
        """``fill`` filled ``order`` (not another order under its orderRef)."""
        found = self.of(fill).order
        return found is not None and found.order_ref == order.order_ref

