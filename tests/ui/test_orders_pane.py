"""The orders pane's status cell of an order the broker holds unworked (a short sale while shares are located)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tui_trader.domain import Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.orders import hold_note
from tui_trader.engine.snapshots import PendingModification
from tui_trader.ui.widgets.orders import COLUMNS, order_row

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
STATUS = [c.title for c in COLUMNS].index("Status")
QTY = [c.title for c in COLUMNS].index("Qty")


def short_entry() -> Order:
    """A short sale the broker acknowledged."""
    return Order("tt1-1", OrderTicket("AAPL", Side.SELL, 10, OrderType.MKT), OrderStatus.SENDING, NOW, NOW)


def test_order_row_when_held_for_a_locate_then_locating_as_a_warning_until_released() -> None:
    held = short_entry().with_status(OrderStatus.SUBMITTED, NOW, hold_note("locate"))
    released = held.with_status(OrderStatus.SUBMITTED, NOW, "Submitted")

    row = order_row(held)

    assert (row.cells[STATUS], row.cell_role(STATUS), row.role) == ("LOCATING", "warn", "working")
    assert order_row(released).cells[STATUS] == "SUBMITTED"


def test_order_row_when_held_for_a_locate_and_a_modify_unanswered_then_still_locating_with_the_figures_asked() -> None:
    # A modify's own step hid the hold: the row read MODIFYING, as if the broker worked the order.
    held = short_entry().with_status(OrderStatus.SUBMITTED, NOW, hold_note("locate"))
    asked = replace(held.ticket, quantity=6)
    modified = replace(held, ticket=asked).with_status(OrderStatus.SUBMITTED, NOW, "modify requested: 6")

    row = order_row(modified, pending=PendingModification(held.ticket, asked))

    assert (row.cells[STATUS], row.cell_role(STATUS)) == ("LOCATING", "warn")
    assert (row.cells[QTY], row.cell_role(QTY)) == ("10→6", "warn")
