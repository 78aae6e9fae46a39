"""OrdersPane: every order of the session, working orders first, filterable."""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter

from textual import events
from textual.app import ComposeResult

from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import DRY_RUN_NOTE, LOCATING, NOT_SENT, Order, OrderTicket
from tui_trader.engine.snapshots import EngineSnapshot, PendingModification
from tui_trader.ui.format import DASH, asked, hhmmss, price, qty, trailing_stop
from tui_trader.ui.freshness import Freshness
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.pane import Pane
from tui_trader.ui.widgets.rows import Column, Row

# Quantities to 999,999 fit in full (without separators past 99,999: ``Column.figures``); a STP LMT's
# two prices to 999.99 fit, and a trailing stop's ≥99,999.99. Status is as wide as its longest text
# (SUBMITTED), which leaves an 80-column terminal the same columns as before.
COLUMNS = (
    Column("Time", 8, priority=3),
    Column("Id", 10, cut_start=True),  # a session's ids share their start: "tt7a70c2-12" → "…7a70c2-12"
    Column("Sym", 6),
    Column("Side", 4),
    Column("Qty", 6, right=True, figures=True),
    Column("Type", 7, priority=2),
    Column("Lmt/Stp", 13, right=True, priority=1, figures=True),
    Column("Status", 9),
    Column("Filled", 6, right=True, priority=2, figures=True),
    Column("Avg", 9, right=True, priority=4, figures=True),
    Column("Strategy/why", 12, priority=5, flex=True),
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


def order_price(t: OrderTicket) -> str:
    """Limit and/or stop price of an order's ticket (a trailing stop's start as :func:`trailing_stop` shows it)."""
    parts = [price(p) for p in (t.limit_price, t.stop_price) if p]
    if t.order_type is OrderType.TRAIL and t.stop_price:
        parts[-1] = trailing_stop(t.stop_price, t.side is Side.SELL)
    return "/".join(parts) if parts else DASH


HELD = "HELD"
"""A bracket child's status while its entry works: acknowledged, yet inactive at the broker (it read
SUBMITTED, as if the stop were protecting a part already filled)."""
MODIFYING = "MODIFYING"
"""A working order's status while the broker has not confirmed a modification of it: its figures are
the ones the broker holds, the ones asked after an arrow (``70→40``). One the broker holds unworked keeps
saying so (LOCATING, :data:`HOLD_SHORT`): the arrow says the modification."""
QTY_WIDTH, PRICE_WIDTH = COLUMNS[4].width, COLUMNS[6].width


HOLD_SHORT = {LOCATING: "LOCATING"}
"""A working order the broker holds unworked (:attr:`Order.broker_hold`): a short sale while shares to borrow
are located reads LOCATING (it can still fill); any other hold reads HELD."""


REJECTED_LEAD_IN = "Order rejected - reason:"
"""How IB starts a rejection's reason (an order's note is the broker's words as IB sent them, ib_async's cut off
by ``broker.ib.mapping.broker_reason``): the column says the reason alone, after ``REJECTED`` and ``broker:``."""


def denial_gist(reason: str) -> str:
    """The first failed check's message, short enough for the column (``trading_state: trading halted`` →
    ``halted``, ``reducing only: …`` → ``reducing only``); the order's trace (t) has the whole reason."""
    name, _, message = reason.split(";")[0].partition(": ")
    return message.split(":")[0].removeprefix("trading ").strip() if message else name


def unsent_outcome(order: Order) -> tuple[str, str] | None:
    """(status, why) of an order that ended without the broker working it, or ``None``.

    The journal says CANCELLED of a dry run's order and REJECTED of three different things; the pane says
    which: DRY RUN / NOT SENT, DENIED by the engine (the risk gate, the kill switch), REJECTED by the
    operator or by the broker (with its reason).
    """
    status = order.status
    if status not in (OrderStatus.CANCELLED, OrderStatus.REJECTED) or not order.history:
        return None
    note = order.history[-1].note
    if status is OrderStatus.CANCELLED:
        if note == DRY_RUN_NOTE:
            return "DRY RUN", note
        return ("NOT SENT", note) if note.endswith(NOT_SENT) else None
    if note.startswith("rejected by "):
        by = note.removeprefix("rejected by ")
        return "REJECTED", "rejected by you" if by == "operator" else note
    if note.startswith("risk: "):
        return "DENIED", f"denied: {denial_gist(note.removeprefix('risk: '))}"
    if not any(step.status is OrderStatus.SENDING for step in order.history):
        return "DENIED", f"denied: {note or 'by the engine'}"  # pending approvals a kill or cancel-all ended
    return "REJECTED", f"broker: {note.removeprefix(REJECTED_LEAD_IN).strip() or 'no reason given'}"


def order_row(order: Order, zone: str = "", held: bool = False, pending: PendingModification | None = None) -> Row:
    """One order as a row; working orders are bold, final ones dimmed; a bracket child the broker
    ``held`` until its entry fills says so (:meth:`Order.held_for`); one with a modification
    ``pending`` shows the figures the broker holds, then the ones asked (:func:`asked`), as MODIFYING,
    or as the broker's hold when it holds the order unworked (LOCATING: it can still fill). One that ended
    unsent or rejected says so, and why in place of its strategy (:func:`unsent_outcome`)."""
    t = order.ticket
    status, status_role = STATUS_SHORT.get(order.status, order.status.value), STATUS_ROLE.get(order.status, "")
    hold = order.broker_hold
    if held and order.status is OrderStatus.SUBMITTED:
        status = HELD
    elif hold:
        status, status_role = HOLD_SHORT.get(hold, HELD), "warn"
    quantity, prices = qty(t.quantity), order_price(t)
    qty_role = price_role = ""
    if pending is not None and order.status.is_working:
        status, status_role, t = status if hold else MODIFYING, "warn", pending.held
        held_qty, held_prices = qty(t.quantity), order_price(t)
        quantity = asked(held_qty, qty(pending.asked.quantity), QTY_WIDTH)
        prices = asked(held_prices, order_price(pending.asked), PRICE_WIDTH)
        # Only the figures the modify changes are marked (a stop moved keeps its quantity plain).
        qty_role = "warn" if quantity != held_qty else ""
        price_role = "warn" if prices != held_prices else ""
    why, why_role = t.strategy, ""
    if (unsent := unsent_outcome(order)) is not None:
        status, why = unsent
        why_role = "neg" if order.status is OrderStatus.REJECTED else ""
    cells = (
        hhmmss(order.created_at, zone),
        order.order_ref,
        t.symbol,
        t.side.value,
        quantity,
        t.order_type.value,
        prices,
        status,
        qty(order.filled_quantity),
        price(order.avg_fill_price) if order.filled_quantity else DASH,
        why,
    )
    roles = ("", "", "", "pos" if t.side.sign > 0 else "neg", qty_role, "", price_role, status_role, "", "", why_role)
    row_role = "working" if order.status.is_working else "dim" if order.status.is_final else ""
    return Row(order.order_ref, cells, roles, row_role)


Entry = tuple[bool, datetime, Row, bool, Order, str, bool, PendingModification | None]
"""An order as the pane sorts and counts it: (settled, created at, row, working, order, zone, held, pending)."""
SETTLED, CREATED = itemgetter(0), itemgetter(1)
Drawn = tuple[tuple[Order, ...], str, str, dict[str, PendingModification]]
"""What the pane drew: the orders, the filter, the time zone, the modifications pending."""


def entry(order: Order, zone: str, held: bool = False, pending: PendingModification | None = None) -> Entry:
    """The order's row and sort keys; *settled* orders (final, not working) go below the others."""
    status = order.status
    return (status.is_final and not status.is_working, order.created_at, order_row(order, zone, held, pending),
            status.is_working, order, zone, held, pending)


def sort_entries(entries: list[Entry]) -> None:
    """Working and pending orders first, then the rest; newest first within each group.

    Two stable sorts on tuple items (C-level keys): with 600 orders this ran two Python key
    functions and two status lookups per order at every change of any order (≈1 ms of a frame
    where new orders arrive, the costliest frames of ``profile_console --real --worst``).
    """
    entries.sort(key=CREATED, reverse=True)
    entries.sort(key=SETTLED)


def same_orders(drawn: Drawn, now: Drawn) -> bool:
    """True when nothing the pane draws changed: the same (or equal) orders, filter, zone and modifications
    pending (almost always none: two empty dicts compare in C).

    Tuple equality runs in C and takes an element's identity as equality first, so the usual
    case (the engine hands back the same order objects) costs no Python call per order: a
    generator of ``is`` over 600 orders took ≈30 µs of every frame. An order equal to the one
    drawn (a frozen dataclass: every field equal) draws the same row.
    """
    return drawn == now


def matches(row: Row, needle: str) -> bool:
    """Case-insensitive substring match over every cell."""
    return not needle or any(needle in cell.lower() for cell in row.cells)


class OrdersPane(Pane):
    """Orders: time, id, symbol, side, quantity, type, prices, status, fills, strategy."""

    def __init__(self) -> None:
        super().__init__("Orders", "3", id="orders-pane")
        self.filter_text = ""
        self._drawn: Drawn | None = None
        self._rows: dict[str, Entry] = {}
        self._visible: list[Row] = []
        self._total = 0
        self._working = 0
        self._visited = False
        """The operator has been in the pane (it had the focus, with rows): the cursor is theirs from then on."""

    def compose(self) -> ComposeResult:
        table = LineTable(COLUMNS, empty="No orders this session", id="orders-table")
        table.newest_first = True
        yield table

    def show(self, snapshot: EngineSnapshot, fresh: Freshness) -> None:
        """Draw the orders, working first, through the current filter."""
        needle = self.filter_text.lower()
        key = (snapshot.orders, needle, snapshot.time_zone, snapshot.modifications)
        if self._drawn is None or not same_orders(self._drawn, key):
            self._drawn = key
            if len(self._rows) > 2 * len(snapshot.orders) + 100:
                self._rows = {}
            live = {o.order_ref for o in snapshot.orders if o.status.is_working}  # entries holding their children
            mods = snapshot.modifications
            entries = [self._entry(o, snapshot.time_zone, o.held_for(live), mods.get(o.order_ref) if mods else None)
                       for o in snapshot.orders]
            sort_entries(entries)
            rows = [e[2] for e in entries]
            self._visible = [r for r in rows if matches(r, needle)] if needle else rows
            self._total = len(rows)
            self._working = sum(e[3] for e in entries)
            self.table.set_rows(self._visible)
            self._keep_cursor_on_top()
        visible, rows_total, working = self._visible, self._total, self._working
        notes = [f"{working} working", *self.newer_note()]
        table = self.table
        # x, e and t act on nothing until the operator picks a row again. One pushed below the view by newer
        # rows is said only while the pane has focus: focusing it puts the cursor on the top row.
        if table.lost_key is not None and not table.lost_below:
            notes.append(f"{table.lost_key} left the list: ↑/↓ to select")
        elif table.lost_key is not None and table.has_focus:
            notes.append(f"{table.lost_key} below the view: ↑/↓ to select")
        if needle:
            notes.append(f"filter '{self.filter_text}' {len(visible)}/{rows_total} (Esc clears)")
        if fresh.account_stale:
            notes.append(fresh.verdict)
        self.set_age(fresh.heartbeat_age, stale=fresh.account_stale, note=" · ".join(notes))

    def _keep_cursor_on_top(self) -> None:
        """Until the operator first comes to the pane, its cursor is on the top row as the pane sorts now.

        It followed the row it was first drawn on by key: an old CANCELLED order topped the pane before any order
        worked, and the first ``3`` then ``e`` tried to modify it, with the newest working order above it.
        """
        if not self._visited and self._visible and not self.table.has_focus:
            self.table.action_cursor(-len(self._visible))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The operator is in the pane: from now on the cursor stays where they put it (on its row, by key)."""
        if self.table.rows:
            self._visited = True

    def _entry(self, order: Order, zone: str, held: bool, pending: PendingModification | None) -> Entry:
        """The order's entry, reused while the engine hands back the same (frozen) order object."""
        cached = self._rows.get(order.order_ref)
        if (cached is not None and cached[4] is order and cached[5] == zone and cached[6] == held
                and (cached[7] is pending or cached[7] == pending)):
            return cached
        made = self._rows[order.order_ref] = entry(order, zone, held, pending)
        return made

    @property
    def selected_ref(self) -> str | None:
        """The order id under the cursor."""
        row = self.table.selected
        return row.key if row is not None else None
