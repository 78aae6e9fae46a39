"""OrdersPane: every order of the session, working orders first, filterable."""

from __future__ import annotations

from operator import attrgetter

from textual.app import ComposeResult

from tui_trader.domain.enums import OrderStatus
from tui_trader.domain.orders import Order
from tui_trader.engine.snapshots import EngineSnapshot
from tui_trader.ui.format import DASH, hhmmss, price, qty
from tui_trader.ui.freshness import Freshness
from tui_trader.ui.widgets.line_table import Column, LineTable, Row
from tui_trader.ui.widgets.pane import Pane

COLUMNS = (
    Column("Time", 8, priority=3),
    Column("Id", 10),
    Column("Sym", 6),
    Column("Side", 4),
    Column("Qty", 6, right=True),
    Column("Type", 7, priority=2),
    Column("Lmt/Stp", 9, right=True, priority=1),
    Column("Status", 11),
    Column("Filled", 6, right=True, priority=2),
    Column("Avg", 9, right=True, priority=4),
    Column("Strategy", 12, priority=5, flex=True),
)

STATUS_ROLE = {
    OrderStatus.PENDING_APPROVAL: "warn",
    OrderStatus.UNKNOWN: "crit",
    OrderStatus.REJECTED: "neg",
    OrderStatus.FILLED: "pos",
    OrderStatus.CANCELLED: "dim",
    OrderStatus.EXPIRED: "dim",
}
STATUS_SHORT = {
    OrderStatus.PENDING_APPROVAL: "APPROVAL",
    OrderStatus.PARTIALLY_FILLED: "PARTIAL",
}


def order_price(order: Order) -> str:
    """Limit and/or stop price of an order."""
    t = order.ticket
    parts = [price(p) for p in (t.limit_price, t.stop_price) if p]
    return "/".join(parts) if parts else DASH


def order_row(order: Order, zone: str = "") -> Row:
    """One order as a row; working orders are bold, final ones dimmed."""
    t = order.ticket
    cells = (
        hhmmss(order.created_at, zone),
        order.order_ref,
        t.symbol,
        t.side.value,
        qty(t.quantity),
        t.order_type.value,
        order_price(order),
        STATUS_SHORT.get(order.status, order.status.value),
        qty(order.filled_quantity),
        price(order.avg_fill_price) if order.filled_quantity else DASH,
        t.strategy,
    )
    roles = ("", "", "", "pos" if t.side.sign > 0 else "neg", "", "", "",
             STATUS_ROLE.get(order.status, ""))
    row_role = "working" if order.status.is_working else "dim" if order.status.is_final else ""
    return Row(order.order_ref, cells, roles, row_role)


def sort_orders(orders: tuple[Order, ...]) -> list[Order]:
    """Working and pending orders first, then the rest; newest first within each group."""
    by_time = sorted(orders, key=attrgetter("created_at"), reverse=True)
    return sorted(by_time, key=lambda o: o.status.is_final and not o.status.is_working)


def same_orders(drawn: tuple[tuple[Order, ...], str, str], now: tuple[tuple[Order, ...], str, str]) -> bool:
    """True when nothing the pane draws changed: the same order objects, filter and zone."""
    (before, *rest_before), (after, *rest_after) = drawn, now
    return rest_before == rest_after and len(before) == len(after) and all(
        a is b for a, b in zip(before, after, strict=True))


def matches(row: Row, needle: str) -> bool:
    """Case-insensitive substring match over every cell."""
    return not needle or any(needle in cell.lower() for cell in row.cells)


class OrdersPane(Pane):
    """Orders: time, id, symbol, side, quantity, type, prices, status, fills, strategy."""

    def __init__(self) -> None:
        super().__init__("Orders", "3", id="orders-pane")
        self.filter_text = ""
        self._drawn: tuple[tuple[Order, ...], str, str] | None = None
        self._rows: dict[str, tuple[Order, Row]] = {}
        self._visible: list[Row] = []
        self._total = 0
        self._working = 0

    def compose(self) -> ComposeResult:
        yield LineTable(COLUMNS, empty="No orders this session", id="orders-table")

    def show(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        """Draw the orders, working first, through the current filter."""
        needle = self.filter_text.lower()
        key = (snapshot.orders, needle, snapshot.time_zone)
        if self._drawn is None or not same_orders(self._drawn, key):
            self._drawn = key
            if len(self._rows) > 2 * len(snapshot.orders) + 100:
                self._rows = {}
            rows = [self._row(o, snapshot.time_zone) for o in sort_orders(snapshot.orders)]
            self._visible = [r for r in rows if matches(r, needle)] if needle else rows
            self._total = len(rows)
            self._working = sum(1 for o in snapshot.orders if o.status.is_working)
            self.table.set_rows(self._visible)
        visible, rows_total, working = self._visible, self._total, self._working
        notes = [f"{working} working"]
        if needle:
            notes.append(f"filter '{self.filter_text}' {len(visible)}/{rows_total}")
        if fresh.account_stale:
            notes.append(fresh.verdict)
        self.set_age(fresh.heartbeat_age, stale=fresh.account_stale, note=" · ".join(notes))

    def _row(self, order: Order, zone: str) -> Row:
        """The order's row, reused while the engine hands back the same (frozen) order object."""
        cached = self._rows.get(order.order_ref)
        if cached is not None and cached[0] is order:
            return cached[1]
        row = order_row(order, zone)
        self._rows[order.order_ref] = (order, row)
        return row

    @property
    def selected_ref(self) -> str | None:
        """The order id under the cursor."""
        row = self.table.selected
        return row.key if row is not None else None
