"""FlattenModal: preview the closing orders, then send them only on confirmation."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from tui_trader.domain.orders import OrderTicket
from tui_trader.engine.handle import EngineHandle
from tui_trader.engine.snapshots import FlattenPreview
from tui_trader.errors import TraderError
from tui_trader.ui.format import money, price, qty
from tui_trader.ui.modals.dialog import Dialog
from tui_trader.ui.widgets.line_table import LineTable
from tui_trader.ui.widgets.rows import Column, Row

COLUMNS = (
    Column("Symbol", 8),
    Column("Side", 5),
    Column("Qty", 11, right=True, figures=True),  # 1,000,000.5
    Column("Type", 6),
    Column("Est price", 10, right=True, figures=True),
    Column("Est notional", 14, right=True, flex=True, figures=True),
)


def preview_rows(tickets: tuple[OrderTicket, ...], prices: dict[str, float]) -> list[Row]:
    """One row per closing order."""
    rows = []
    for t in tickets:
        est = prices.get(t.symbol)
        cells = (t.symbol, t.side.value, qty(t.quantity), t.order_type.value, price(est),
                 money(est * t.quantity if est else None))
        rows.append(Row(t.symbol, cells, ("", "pos" if t.side.sign > 0 else "neg")))
    return rows


def summary_text(preview: FlattenPreview) -> str:
    """What confirming sends, and first what makes its estimate unreliable (a quote long stale in a data
    outage: the market orders still go)."""
    tickets = preview.tickets
    total = sum(preview.est_prices.get(t.symbol, 0.0) * t.quantity for t in tickets)
    warnings = "".join(f"{w}.\n" for w in preview.warnings)
    return (f"{warnings}{len(tickets)} closing market order(s), ≈ {money(total)} notional. "
            "Confirming sends them: stops and targets are cancelled first, then each passes the risk gate"
            " (reduce-only).")


class FlattenModal(Dialog[bool]):
    """Flatten everything (``symbol`` None) or one symbol, after showing exactly what would be sent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel-flatten", tooltip="Send nothing"),
        Binding("y", "confirm", "Flatten", id="confirm-flatten", tooltip="Send the closing orders shown"),
    ]
    """y sends the previewed orders, Escape sends nothing."""

    def __init__(self, handle: EngineHandle, symbol: str | None = None) -> None:
        super().__init__(id="flatten-modal")
        self.handle = handle
        self.symbol = symbol
        self.preview: FlattenPreview | None = None

    def compose(self) -> ComposeResult:
        what = self.symbol or "ALL positions"
        with Vertical(id="flatten-dialog", classes="dialog -warning"):
            yield Label(f"Flatten {what}", classes="dialog-title")
            yield Static("Loading the preview…", id="flatten-summary")
            table = LineTable(COLUMNS, empty="Nothing to close", id="flatten-table")
            table.show_cursor = False
            yield table
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Flatten (y)", id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        self.run_worker(self.load(), name="flatten-preview", exit_on_error=False)

    async def load(self) -> None:
        """Ask the engine for the closing orders and show them; a refusal is said, and Flatten stays off.

        The worker is this modal's, and a failed one told nobody: the modal read "Loading the preview…"
        for as long as it stayed open.
        """
        try:
            preview = await self.handle.flatten(preview=True, symbol=self.symbol)
        except TraderError as exc:
            self.query_one("#flatten-summary", Static).update(
                f"No preview: {exc.message}. Nothing can be sent from here; Esc closes.")
            return
        tickets = preview.tickets
        self.preview = FlattenPreview(tickets, preview.est_prices, preview.warnings)
        self.query_one(LineTable).set_rows(preview_rows(tickets, preview.est_prices))
        self.query_one("#flatten-summary", Static).update(summary_text(self.preview))
        self.query_one("#confirm", Button).disabled = not tickets

    def action_confirm(self) -> None:
        """Send the previewed orders (only once the preview is shown)."""
        if self.preview is not None and self.preview.tickets:
            self.dismiss(True)

    def action_cancel(self) -> None:
        """Send nothing."""
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_confirm() if event.button.id == "confirm" else self.action_cancel()
