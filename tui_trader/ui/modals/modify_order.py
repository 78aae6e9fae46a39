"""ModifyOrderModal: new quantity or prices for a working order, re-placed under its id.

What it returns goes to ``EngineHandle.modify``, which checks the changed order with the risk gate
before it re-places it (a denial changes nothing at the broker and is said as an alert). The modal
is the operator's confirmation: it shows the order as it works now and what the change makes of it.

While a modify of the order is unconfirmed, the order works at the figures the broker still holds: those
are shown as its own, the ones asked beside them as pending. The fields start from the figures asked (a
new modify goes out after the pending one, on top of it), and the change is shown from the broker's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label

from tui_trader.domain.orders import Order, OrderTicket
from tui_trader.ui.format import plain, price, qty
from tui_trader.ui.modals.form import OrderForm
from tui_trader.ui.modals.order_ticket import USES_LIMIT, USES_STOP, TicketError, figure, optional_price


@dataclass(frozen=True, slots=True)
class Modification:
    """The figures that change (``None``: unchanged), as ``EngineHandle.modify`` takes them."""

    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None

    def describe(self, order: Order, held: OrderTicket | None = None) -> str:
        """``quantity 25 → 30 · stop 200.40 → 199.80``: from the order's figures, or from ``held`` (what the broker
        holds while a modify of it is unconfirmed) to the figures this change leaves the order with."""
        t = order.ticket
        base = held or t
        parts = [f"{name} {show(old)} → {show(new)}" for name, old, new, show in (
            ("quantity", base.quantity, _or(self.quantity, t.quantity), qty),
            ("limit", base.limit_price, _or(self.limit_price, t.limit_price), price),
            ("stop", base.stop_price, _or(self.stop_price, t.stop_price), price)) if new != old]
        return " · ".join(parts)


def _or(new: float | None, old: float | None) -> float | None:
    return new if new is not None else old


def order_line(order: Order) -> str:
    """The order as it works now: ``SELL 25 AAPL STP stop 200.40 · filled 0 · SUBMITTED``."""
    t = order.ticket
    what = " ".join(p for p in (t.side.value, qty(t.quantity), t.symbol, t.order_type.value, _prices(t)) if p)
    return f"{what} · filled {qty(order.filled_quantity)} · {order.status.value}"


def pending_line(asked: OrderTicket) -> str:
    """A modify the broker has not confirmed: ``modify pending, not confirmed by the broker: 30 · stop 199.80``."""
    figures = " · ".join(p for p in (qty(asked.quantity), _prices(asked)) if p)
    return f"modify pending, not confirmed by the broker: {figures}"


def _prices(t: OrderTicket) -> str:
    return " ".join(p for p in (f"limit {price(t.limit_price)}" if t.order_type in USES_LIMIT else "",
                                f"stop {price(t.stop_price)}" if t.order_type in USES_STOP else "") if p)


def build_modification(order: Order, fields: dict[str, str]) -> Modification:
    """The changes the fields make to ``order`` (raises TicketError naming the bad field, or when none)."""
    t = order.ticket
    quantity = figure(fields["quantity"], "quantity")
    if quantity <= order.filled_quantity:
        raise TicketError(f"quantity: must be more than the {qty(order.filled_quantity)} already filled")
    limit = optional_price(fields.get("limit", ""), "limit") if t.order_type in USES_LIMIT else None
    stop = optional_price(fields.get("stop", ""), "stop") if t.order_type in USES_STOP else None
    if t.order_type in USES_LIMIT and limit is None:
        raise TicketError("limit: required for this order type")
    if t.order_type in USES_STOP and stop is None:
        raise TicketError("stop: required for this order type")
    change = Modification(quantity if quantity != t.quantity else None,
                          limit if limit is not None and limit != t.limit_price else None,
                          stop if stop is not None and stop != t.stop_price else None)
    if change == Modification():
        raise TicketError("nothing changed")
    return change


class ModifyOrderModal(OrderForm[Modification | None]):
    """The form; returns the modification to send, or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel-modify", tooltip="Leave the order as it is"),
        Binding("ctrl+s", "submit", "Modify", id="submit-modify", tooltip="Re-place the order with these figures"),
    ]
    """ctrl+s (or Enter) modifies, Escape leaves the order as it is."""

    def __init__(self, order: Order, held: OrderTicket | None = None) -> None:
        """``held``: the figures the broker holds while a modify of ``order`` (its ticket) is unconfirmed."""
        super().__init__(id="modify-order-modal")
        self.order = order
        self.held = held if held != order.ticket else None

    def compose(self) -> ComposeResult:
        t = self.order.ticket
        with Vertical(id="modify-dialog", classes="dialog"):
            yield Label(f"Modify order {self.order.order_ref} ({t.symbol})", classes="dialog-title")
            yield Label(order_line(replace(self.order, ticket=self.held) if self.held else self.order), id="modify-now")
            if self.held is not None:
                yield Label(pending_line(t), id="modify-pending")
            with Horizontal(id="modify-form"):
                # Exact figures: a field left as it is parses back to the order's own figure, so it is
                # not sent (f"{12345.67:g}" prefilled 12345.7, and a quantity change re-placed the limit there).
                yield Input(plain(t.quantity), placeholder="quantity", id="modify-quantity")
                if t.order_type in USES_LIMIT:
                    yield Input(plain(t.limit_price) if t.limit_price else "", placeholder="limit price",
                                id="modify-limit")
                if t.order_type in USES_STOP:
                    yield Input(plain(t.stop_price) if t.stop_price else "", placeholder="stop price",
                                id="modify-stop")
            yield Label("", id="modify-change")
            yield Label("", id="modify-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Modify (ctrl+s)", id="submit", variant="warning")

    def on_mount(self) -> None:
        for field in self.query(Input):  # prefilled: a placeholder would not say which figure is which
            field.border_title = field.placeholder
        self.query_one(Input).focus()
        self.update_change()

    def fields(self) -> dict[str, str]:
        """The raw text of every field the order has."""
        return {i.id.removeprefix("modify-"): i.value for i in self.query(Input) if i.id}

    def on_input_changed(self) -> None:
        self.update_change()

    def update_change(self) -> Modification | None:
        """Parse the form and show what it changes; returns the modification when there is one."""
        try:
            change = build_modification(self.order, self.fields())
        except TicketError as exc:
            self.query_one("#modify-change", Label).update("")
            self.query_one("#modify-error", Label).update(str(exc))
            return None
        self.query_one("#modify-change", Label).update(change.describe(self.order, self.held))
        self.query_one("#modify-error", Label).update("")
        return change

    def action_submit(self) -> None:
        """Modify when the form makes a change (the engine's risk gate checks it before re-placing)."""
        change = self.update_change()
        if change is not None:
            self.dismiss(change)
