"""The orders pane tells a dry run's order from a broker's cancel, and the three kinds of REJECTED apart."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import DRY_RUN_NOTE, NOT_SENT, Order, OrderTicket
from tui_trader.engine import send
from tui_trader.ui.demo import FROZEN, make_order, normal_state
from tui_trader.ui.widgets import orders as pane
from tui_trader.ui.widgets.line_table import LineTable

from .conftest import running
from .test_real_engine import real_console

S = OrderStatus
STATUS = [c.title for c in pane.COLUMNS].index("Status")
WHY = len(pane.COLUMNS) - 1
"""The last column: the strategy, or why an order ended unsent or rejected."""


def ended(ref: str, *steps: tuple[OrderStatus, str]) -> Order:
    """An order for 10 AAPL that went through ``steps`` (status, note) as the engine moves it."""
    ticket = OrderTicket("AAPL", Side.BUY, 10, OrderType.LMT, limit_price=200.0, strategy="ema_cross")
    order = make_order(ref, ticket, S.PENDING_APPROVAL, FROZEN)
    for n, (status, note) in enumerate(steps, 1):
        order = order.with_status(status, FROZEN + timedelta(seconds=n), note)
    return order


async def test_orders_pane_when_orders_ended_unsent_or_rejected_then_each_says_what_happened_and_why() -> None:
    # QA: a dry run's orders read CANCELLED, as if the broker had cancelled them; the operator's reject, the gate's
    # denial (HALTED) and the broker's rejection all read REJECTED, with no reason.
    orders = (
        ended("tt-1", (S.APPROVED, "approved by operator"), (S.SENDING, send.SENDING_NOTE),
              (S.CANCELLED, DRY_RUN_NOTE)),
        ended("tt-2", (S.REJECTED, "rejected by operator")),
        ended("tt-3", (S.REJECTED, "risk: trading_state: trading halted")),
        ended("tt-4", (S.APPROVED, "approved by operator"), (S.SENDING, send.SENDING_NOTE),
              (S.REJECTED, "Order rejected - reason:Simulated rejection")),  # the broker's words (broker.ib.mapping)
        ended("tt-5", (S.REJECTED, "kill switch engaged")),
        ended("tt-6", (S.APPROVED, "approved by operator"), (S.SENDING, send.SENDING_NOTE),
              (S.SUBMITTED, "Submitted"), (S.CANCELLED, "operator cancel")),
        # As the engine words an exit stopped before the wire (it read CANCELLED: the pane matched ": not sent").
        ended("tt-7", (S.APPROVED, "approved by operator"), (S.SENDING, send.SENDING_NOTE),
              (S.CANCELLED, f"protective orders still working in AAPL: exit {NOT_SENT}")),
    )
    async with running(replace(normal_state(), orders=orders), size=(160, 48)) as c:
        rows = {row.key: row for row in c.app.main.query_one("#orders-table", LineTable).rows}

        shown = {ref: (row.cells[STATUS], row.cells[WHY]) for ref, row in rows.items()}
        assert shown == {
            "tt-1": ("DRY RUN", "dry run: not sent"),
            "tt-2": ("REJECTED", "rejected by you"),
            "tt-3": ("DENIED", "denied: halted"),
            "tt-4": ("REJECTED", "broker: Simulated rejection"),
            "tt-5": ("DENIED", "denied: kill switch engaged"),
            "tt-6": ("CANCELLED", "ema_cross"),  # a cancel at the broker still reads as one
            "tt-7": ("NOT SENT", "protective orders still working in AAPL: exit not sent"),
        }
        assert rows["tt-4"].cell_role(WHY) == "neg"
        table = c.app.main.query_one("#orders-table", LineTable)
        drawn = [table.render_line(y).text for y in range(1, len(orders) + 1)]
        assert any("DENIED" in line and "denied: halted" in line for line in drawn)
        assert any("REJECTED" in line and "rejected by you" in line for line in drawn)


async def test_real_engine_when_the_broker_rejects_and_the_gate_denies_then_the_pane_says_which_and_why(
        tmp_path: Path) -> None:
    async with real_console(tmp_path, approvals_required=False) as c:
        c.gw.control.reject_next()
        rejected = await c.engine.submit(c.resting_limit())
        await c.until(lambda: c.rows("orders-table").get(rejected.order_ref, ("",) * 8)[STATUS] == "REJECTED",
                      "the broker's rejection on screen")
        assert c.rows("orders-table")[rejected.order_ref][WHY] == "broker: Simulated rejection"

        c.engine.kill("test", by="operator")
        denied = await c.engine.submit(c.resting_limit())

        await c.until(lambda: denied.order_ref in c.rows("orders-table"), "the denied order on screen")
        cells = c.rows("orders-table")[denied.order_ref]
        assert (cells[STATUS], cells[WHY]) == ("DENIED", "denied: halted")
