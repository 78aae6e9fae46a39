"""The order ticket and the modify form send exactly the figures the operator means."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from textual.widgets import Input, Label, Select

from tui_trader.domain.enums import OrderStatus, OrderType, Side
from tui_trader.domain.orders import NOT_STRATEGY_NAMES, OrderTicket
from tui_trader.engine.snapshots import EngineSnapshot, PendingModification
from tui_trader.ui.demo import FROZEN, make_order, normal_state, pending
from tui_trader.ui.modals.approval import WHOSE, order_line, plan_text
from tui_trader.ui.modals.modify_order import ModifyOrderModal
from tui_trader.ui.modals.order_ticket import build_ticket, summary_text

from .conftest import Console, running
from .test_console import typed_ticket


async def test_order_ticket_when_switched_to_mkt_then_the_limit_typed_before_is_not_sent() -> None:
    # The MKT ticket kept the 1.00 limit: previewed at a notional of 500 it passed the 50,000 limit,
    # and it would fill at the market (≈ 106,000).
    async with running() as c:
        form = await typed_ticket(c, "AAPL", "500", "1.00")
        form.query_one("#ticket-type", Select).value = OrderType.MKT.value
        await c.settle()

        assert form.denial == "order_notional: order too large"
        previewed = c.engine.called("preview")[-1][1]
        assert (previewed.order_type, previewed.limit_price, previewed.stop_price) == (  # type: ignore[attr-defined]
            OrderType.MKT, None, None)
        await c.pilot.press("ctrl+s")
        await c.settle()
        assert not c.engine.called("submit")


@pytest.mark.parametrize(("order_type", "limit", "stop"), [
    (OrderType.MKT, None, None), (OrderType.LMT, 10.0, None), (OrderType.STP, None, 9.0),
    (OrderType.STP_LMT, 10.0, 9.0), (OrderType.TRAIL, None, None),
])
def test_build_ticket_then_keeps_only_the_prices_its_order_type_uses(
        order_type: OrderType, limit: float | None, stop: float | None) -> None:
    fields = {"symbol": "aapl", "quantity": "5", "type": order_type.value, "side": "BUY",
              "limit": "10", "stop": "9", "sl": "", "tp": ""}

    ticket = build_ticket(fields)

    assert (ticket.limit_price, ticket.stop_price) == (limit, stop)


def one_order(quantity: float, limit: float, stop: float | None = None) -> EngineSnapshot:
    """The normal state with one working order, tt-777 (STP LMT when ``stop`` is given)."""
    order_type = OrderType.LMT if stop is None else OrderType.STP_LMT
    ticket = OrderTicket("NVR", Side.BUY, quantity, order_type, limit_price=limit, stop_price=stop)
    order = make_order("tt-777", ticket, OrderStatus.SUBMITTED, FROZEN + timedelta(seconds=5))
    return replace(normal_state(), orders=(order,))


async def open_modify(c: Console) -> ModifyOrderModal:
    """The modify form of the order under the cursor, opened with ``e`` on the orders pane."""
    await c.pilot.press("3", "e")
    await c.settle()
    modal = c.app.screen
    assert isinstance(modal, ModifyOrderModal)
    return modal


async def test_modify_when_only_the_quantity_changes_then_the_prices_are_not_sent() -> None:
    # The limit was prefilled as f"{12345.67:g}" = "12345.7": a quantity change re-placed it at 12,345.70.
    async with running(one_order(2, 12345.67, stop=12000.125)) as c:
        modal = await open_modify(c)
        assert modal.query_one("#modify-limit", Input).value == "12345.67"
        assert modal.query_one("#modify-stop", Input).value == "12000.125"

        modal.query_one("#modify-quantity", Input).value = "3"
        await c.settle()
        assert str(modal.query_one("#modify-change", Label).render()) == "quantity 2 → 3"
        await c.pilot.press("ctrl+s")
        await c.settle(3)

        assert c.engine.called("modify") == [("modify", "tt-777", 3.0, None, None)]


async def test_modify_when_only_the_limit_changes_then_a_fractional_quantity_is_not_sent() -> None:
    # The quantity was prefilled as qty(1234.5) = "1,234" without its comma: a limit change cut it to 1,234.
    async with running(one_order(1234.5, 100.0)) as c:
        modal = await open_modify(c)
        assert modal.query_one("#modify-quantity", Input).value == "1234.5"

        modal.query_one("#modify-limit", Input).value = "101"
        await c.settle()
        await c.pilot.press("ctrl+s")
        await c.settle(3)

        assert c.engine.called("modify") == [("modify", "tt-777", None, 101.0, None)]


async def test_modify_when_a_modify_of_the_order_is_unconfirmed_then_the_brokers_figures_are_shown_as_current() -> None:
    # The form read the order's ticket, the figures of the modify still unanswered, as the order working now
    # ("BUY 3 NVR LMT limit 101.00") and the change as from them: the broker still held 2 at 100.
    held = OrderTicket("NVR", Side.BUY, 2, OrderType.LMT, limit_price=100.0)
    state = one_order(3, 101.0)
    state = replace(state, modifications={"tt-777": PendingModification(held, state.orders[0].ticket)})
    async with running(state) as c:
        modal = await open_modify(c)
        now = "BUY 2 NVR LMT limit 100.00 · filled 0 · SUBMITTED"
        assert str(modal.query_one("#modify-now", Label).render()) == now
        assert str(modal.query_one("#modify-pending", Label).render()) == (
            "modify pending, not confirmed by the broker: 3 · limit 101.00")
        assert modal.query_one("#modify-quantity", Input).value == "3"  # a new modify goes on top of the pending one

        modal.query_one("#modify-limit", Input).value = "102"
        await c.settle()
        assert str(modal.query_one("#modify-change", Label).render()) == "quantity 2 → 3 · limit 100.00 → 102.00"
        await c.pilot.press("ctrl+s")
        await c.settle(3)

        assert c.engine.called("modify") == [("modify", "tt-777", None, 102.0, None)]


@pytest.mark.parametrize(("ticket", "line"), [
    (OrderTicket("AAPL", Side.BUY, 100, OrderType.MKT), "BUY 100 AAPL MKT"),
    (OrderTicket("AAPL", Side.SELL, 12.5, OrderType.STP_LMT, limit_price=209.5, stop_price=210),
     "SELL 12.5 AAPL STP LMT limit 209.50 stop 210.00"),
])
def test_order_line_when_the_approval_or_the_ticket_says_the_order_then_the_same_words(
        ticket: OrderTicket, line: str) -> None:
    assert order_line(ticket) == line
    assert plan_text(ticket, pending(FROZEN)).splitlines()[0] == f"{line} DAY"
    assert summary_text(ticket, 1000.0) == f"{line} · notional ≈ 1,000.00"


def test_whose_words_when_compared_with_the_names_no_strategy_may_take_then_the_same_names() -> None:
    # A name added to NOT_STRATEGY_NAMES without words in WHOSE would read "strategy <name>" in the approval.
    assert WHOSE.keys() == NOT_STRATEGY_NAMES
