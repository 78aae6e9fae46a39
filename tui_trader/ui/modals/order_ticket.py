"""OrderTicketModal: a manual order, previewed by the risk gate as it is typed.

Submitting hands the ticket to ``EngineHandle.submit``: the same risk gate and approval path
as a strategy's order (the approval modal follows where approvals are required). Ctrl+T asks the
broker's what-if of the ticket as it stands (``EngineHandle.what_if``: margin and commission, nothing
placed) before it is submitted. A symbol the session has no quote for is subscribed when the
symbol field is left (``EngineHandle.watch``), so it can be checked against a quote.

The order as parsed (side, quantity, symbol, type, price) and its notional are shown in bold above the buttons
as it is typed: what Ctrl+S sends, read before it is sent. The title, that line, the error and the buttons stay
in view at any terminal size; the fields and the checks scroll between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Collection
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select

from tui_trader.domain.enums import OrderType, Side
from tui_trader.domain.market import Instrument
from tui_trader.domain.orders import MANUAL, Bracket, OrderTicket, WhatIf
from tui_trader.domain.verdicts import RiskVerdict
from tui_trader.risk.checks import ORDER_NOTIONAL
from tui_trader.ui.format import money, qty
from tui_trader.ui.modals.approval import CHECK_COLUMNS, check_row, order_line
from tui_trader.ui.modals.form import OrderForm
from tui_trader.ui.widgets.footer import KeyFooter
from tui_trader.ui.widgets.line_table import LineTable

Previewer = Callable[[OrderTicket], RiskVerdict]
WhatIfAsker = Callable[[OrderTicket], Awaitable[tuple[WhatIf | None, str]]]
Watcher = Callable[[str], Awaitable[Instrument]]
WHAT_IF_HINT = "ctrl+t: the broker's what-if (margin, commission; nothing is placed)"
USES_LIMIT = frozenset({OrderType.LMT, OrderType.STP_LMT})
"""Order types that carry a limit price."""
USES_STOP = frozenset({OrderType.STP, OrderType.STP_LMT})
"""Order types that carry a stop price. A TRAIL takes a trail amount or percent, which this form has no
field for: the risk gate denies one typed here rather than price it at a stop typed for another type."""


TYPED_QUANTITY = r"\d*\.?\d{0,4}"
"""What the quantity field takes as it is typed: digits, one decimal point, at most 4 decimals (a key that
would make it anything else is refused with the bell; :func:`figure` still checks what was pasted or set)."""
TYPED_PRICE = r"\d*\.?\d*"
"""What a price field takes as it is typed: digits and one decimal point."""
PRICE_FIELDS = (("limit", "limit price"), ("stop", "stop price"), ("sl", "bracket stop-loss"),
                ("tp", "bracket target"))


class TicketError(ValueError):
    """A field of the ticket does not parse."""


PLAIN_NUMBER = re.compile(r"\d+\.?\d*|\.\d+")
"""A figure as an operator types one: digits with at most one decimal point. Python's ``float`` also
takes ``1e3``, ``1_000``, ``nan`` and ``inf``: a ticket took quantity ``1e3`` as 1,000 shares, and a limit
``nan`` went on to the risk gate and the approval as a price."""


def figure(text: str, name: str) -> float:
    """A positive, finite figure typed as digits and at most one decimal point (raises TicketError saying
    what is wrong with it, by the field's ``name``)."""
    typed = text.strip()
    if not typed:
        raise TicketError(f"{name}: required")
    if typed[0] in "+-" and PLAIN_NUMBER.fullmatch(typed[1:]):
        if typed[0] == "-" and float(typed[1:]) != 0:
            raise TicketError(f"{name}: must be positive, not {typed}")
        raise TicketError(f"{name}: type it without a sign")
    if not PLAIN_NUMBER.fullmatch(typed):
        raise TicketError(f"{name}: {typed!r} is not a plain number (digits and at most one decimal point)")
    value = float(typed)
    if value == 0:
        raise TicketError(f"{name}: must be more than 0")
    if not math.isfinite(value):
        raise TicketError(f"{name}: too large")
    return value


def optional_price(text: str, name: str) -> float | None:
    """A positive price, or ``None`` for an empty field."""
    return figure(text, name) if text.strip() else None


def notional_of(ticket: OrderTicket, verdict: RiskVerdict) -> float:
    """The ticket's notional as the risk gate valued it (its order_notional check, at the quote now), else at
    the ticket's own price; NaN when neither is known (a market order with that check off)."""
    gate = verdict.check(ORDER_NOTIONAL)
    if gate is not None and gate.value is not None and math.isfinite(gate.value):
        return gate.value
    return ticket.quantity * ticket.own_price


def summary_text(ticket: OrderTicket, notional: float) -> str:
    """The order as parsed, in one line: what Ctrl+S sends, and what it is worth."""
    worth = f"notional ≈ {money(notional)}" if math.isfinite(notional) else "notional: not known yet (no price)"
    return f"{order_line(ticket)} · {worth}"


def build_ticket(fields: dict[str, str]) -> OrderTicket:
    """Parse the form's fields into a ticket (raises TicketError naming the bad field)."""
    symbol = fields["symbol"].strip().upper()
    if not symbol:
        raise TicketError("symbol: required")
    quantity = figure(fields["quantity"], "quantity")
    order_type = OrderType(fields["type"])
    # A price typed for another order type is left behind, not sent: a MKT ticket carrying the limit
    # typed before the switch was priced (notional, approval text) at that limit and filled at the market.
    limit = optional_price(fields["limit"], "limit") if order_type in USES_LIMIT else None
    stop = optional_price(fields["stop"], "stop") if order_type in USES_STOP else None
    if order_type in USES_LIMIT and limit is None:
        raise TicketError("limit: required for this order type")
    if order_type in USES_STOP and stop is None:
        raise TicketError("stop: required for this order type")
    sl, tp = optional_price(fields["sl"], "stop-loss"), optional_price(fields["tp"], "target")
    bracket = Bracket(stop_price=sl, take_profit_price=tp) if sl or tp else None
    return OrderTicket(symbol=symbol, side=Side(fields["side"]), quantity=quantity, order_type=order_type,
                       limit_price=limit, stop_price=stop, bracket=bracket, strategy=MANUAL,
                       reason="manual ticket")


class OrderTicketModal(OrderForm[OrderTicket | None]):
    """The form; returns the ticket to submit, or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel-ticket", tooltip="Discard this ticket"),
        Binding("ctrl+s", "submit", "Submit", id="submit-ticket", tooltip="Submit through risk and approval"),
        Binding("ctrl+t", "what_if", "What-if", id="what-if-ticket",
                tooltip="Ask the broker what this order would do to margin, and its commission"),
    ]
    """ctrl+s submits, ctrl+t asks the broker's what-if, Escape discards."""

    def __init__(self, preview: Previewer, symbol: str = "", what_if: WhatIfAsker | None = None,
                 watch: Watcher | None = None, known: Collection[str] = ()) -> None:
        """``known``: the symbols the session has quotes for; another one is subscribed through ``watch``."""
        super().__init__(id="order-ticket-modal")
        self.preview = preview
        self.what_if = what_if
        self.watch_symbol = watch
        self.known = set(known)
        self._watching: set[str] = set()
        """Symbols being subscribed now."""
        self._held_for_quotes = ""
        """The symbol whose submit waited for its quotes: said again when they are in, not cleared unseen."""
        self.symbol = symbol
        self._what_if_of: OrderTicket | None = None
        """The ticket the what-if line is about (None: it shows the hint)."""
        self.denial = ""
        """Why the risk preview denies the ticket as it stands (empty: it passes)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="ticket-dialog", classes="dialog"):
            yield Label("New order", classes="dialog-title dialog-head")
            with VerticalScroll(id="ticket-body", classes="dialog-body", can_focus=False):
                with Grid(id="ticket-form"):
                    yield Input(self.symbol, placeholder="symbol", id="ticket-symbol")
                    yield Select([(s.value, s.value) for s in Side], value=Side.BUY.value,
                                 allow_blank=False, id="ticket-side")
                    yield Input("", placeholder="quantity", id="ticket-quantity", restrict=TYPED_QUANTITY)
                    yield Select([(t.value, t.value) for t in OrderType if t.modelled], value=OrderType.LMT.value,
                                 allow_blank=False, id="ticket-type")
                    for name, hint in PRICE_FIELDS:
                        yield Input("", placeholder=hint, id=f"ticket-{name}", restrict=TYPED_PRICE)
                table = LineTable(CHECK_COLUMNS, empty="Fill in the ticket to see the risk checks",
                                  id="ticket-checks")
                table.show_cursor = False
                table.can_focus = False
                yield table
                yield Label(WHAT_IF_HINT if self.what_if else "", id="ticket-what-if")
            with Vertical(classes="dialog-foot"):
                yield Label("", id="ticket-summary")
                yield Label("", id="ticket-error", classes="dialog-error")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Cancel", id="cancel", variant="primary")
                    yield Button("Submit (ctrl+s)", id="submit", variant="warning")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#ticket-symbol", Input).focus()
        self._watch_if_new()

    def on_input_blurred(self, event: Input.Blurred) -> None:
        if event.input.id == "ticket-symbol":
            self._watch_if_new()

    def _typed_symbol(self) -> str:
        return self.query_one("#ticket-symbol", Input).value.strip().upper()

    def _watch_if_new(self) -> bool:
        """Subscribe the symbol typed if the session has no quote for it; ``True`` while that is under way."""
        symbol = self._typed_symbol()
        if not symbol or self.watch_symbol is None or symbol in self.known:
            return False
        if symbol not in self._watching:
            self._watching.add(symbol)
            self.query_one("#ticket-error", Label).update(
                f"{symbol}: not one of this session's symbols; subscribing to its quotes…")
            self.run_worker(self._subscribe(self.watch_symbol, symbol), group="watch", exit_on_error=False)
        return True

    async def _subscribe(self, watch: Watcher, symbol: str) -> None:
        try:
            await watch(symbol)
        except Exception as exc:  # noqa: BLE001 - refused (unknown symbol, disconnected) or the engine gone
            if self._typed_symbol() == symbol:
                self.query_one("#ticket-error", Label).update(f"symbol: {getattr(exc, 'message', exc)}")
            return
        finally:
            self._watching.discard(symbol)
        self.known.add(symbol)
        if self._typed_symbol() == symbol and self.update_preview() is not None and self._held_for_quotes == symbol \
                and not self.denial:
            self.query_one("#ticket-error", Label).update(
                f"{symbol}'s quotes are in. Not sent yet: submit again (ctrl+s) to send it.")

    def fields(self) -> dict[str, str]:
        """The raw text of every field."""
        def text(name: str) -> str:
            return self.query_one(f"#ticket-{name}", Input).value

        return {
            "symbol": text("symbol"), "quantity": text("quantity"), "limit": text("limit"),
            "stop": text("stop"), "sl": text("sl"), "tp": text("tp"),
            "side": str(self.query_one("#ticket-side", Select).value),
            "type": str(self.query_one("#ticket-type", Select).value),
        }

    def on_input_changed(self) -> None:
        self.update_preview()

    def on_select_changed(self) -> None:
        self.update_preview()

    def update_preview(self) -> OrderTicket | None:
        """Parse the form and show the risk gate's verdict; returns the ticket when it parses."""
        error, summary = self.query_one("#ticket-error", Label), self.query_one("#ticket-summary", Label)
        try:
            ticket = build_ticket(self.fields())
        except TicketError as exc:
            error.update(str(exc))
            summary.update("")
            self.query_one(LineTable).set_rows([])
            return None
        verdict = self.preview(ticket)
        summary.update(summary_text(ticket, notional_of(ticket, verdict)))
        self.query_one(LineTable).set_rows([check_row(c) for c in verdict.checks])
        self.denial = "" if verdict.passed else verdict.reason
        error.update(f"Risk would deny: {self.denial}" if self.denial else "")
        if self._what_if_of is not None and self._what_if_of != ticket:  # the answer was for another order
            self._show_what_if(None, WHAT_IF_HINT)
        return ticket

    def action_submit(self) -> None:
        """Submit when the ticket parses and the risk preview passes it (the engine checks it again).

        A ticket the preview denies stays open with the reason, as typed: submitted, it would only
        become a rejected order, and the operator would type it all again to fix one field.
        """
        ticket = self.update_preview()
        if ticket is None:
            return
        if self._watch_if_new():
            self._held_for_quotes = ticket.symbol
            self.query_one("#ticket-error", Label).update(
                f"Not sent: subscribing to {ticket.symbol}'s quotes; submit again once they are in.")
            return
        if self.denial:
            self.query_one("#ticket-error", Label).update(
                f"Not sent: {self.denial}. Change the order, or Esc to discard it.")
            return
        self.dismiss(ticket)

    def action_what_if(self) -> None:
        """Ask the broker's what-if of the ticket as it stands (it must parse)."""
        ticket = self.update_preview()
        if ticket is None or self.what_if is None:
            return
        self._show_what_if(ticket, "what-if: asking the broker…")
        self.run_worker(self._ask_what_if(self.what_if, ticket), group="what-if", exclusive=True,
                        exit_on_error=False)

    async def _ask_what_if(self, ask: WhatIfAsker, ticket: OrderTicket) -> None:
        try:
            answer, note = await ask(ticket)
        except Exception as exc:  # noqa: BLE001 - the engine gone, say: the ticket says so and stays usable
            answer, note = None, f"not answered ({exc})"
        if self._what_if_of != ticket:  # edited meanwhile: the answer is about an order no longer on screen
            return
        if answer is None:
            self._show_what_if(ticket, f"what-if: {note}")
            return
        figures = [f"margin {money(answer.init_margin_change, signed=True)}"
                   if answer.init_margin_change is not None else "margin: not given",
                   f"commission {money(answer.commission)}" if answer.commission is not None else ""]
        text = " · ".join(f for f in figures if f) + (f" ({note})" if note else "")
        self._show_what_if(ticket, f"what-if {ticket.side.value} {qty(ticket.quantity)} {ticket.symbol}: {text}")

    def _show_what_if(self, ticket: OrderTicket | None, text: str) -> None:
        self._what_if_of = ticket
        self.query_one("#ticket-what-if", Label).update(text)
