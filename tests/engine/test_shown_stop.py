"""A position's stop as the console shows it is one that would close it, or the console says it has none.

Found reviewing ``protection``: the position took the first reduce-only working stop in its symbol as its
stop, whatever its side. A long reversed short by a manual sell kept showing its old bracket's sell stop while
that stop's cancel was unanswered (a sell stop under a short closes nothing: it would add to it), and the quit
and reset dialogs, reading the stop as there, did not name the short."""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.portfolio import unprotected_positions
from tui_trader.sim import SimGateway

from .helpers import bracket_buy, eventually, make_config, running, status

S = OrderStatus


async def test_position_when_reversed_while_its_old_stops_cancel_is_unanswered_then_no_stop_shown_and_named(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 10 AAPL with its bracket's sell stop working; the broker's order statuses held back, so the
    # old stop's cancel goes unanswered (the reversing sell's fill still comes, by its execution).
    async with running(sim, make_config(tmp_path)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=10)
        for kind in ("order_status", "error"):  # the cancel's answers: its status and its 202
            sim.control.delay_messages(kind, 30)  # simulated seconds: never, unless the clock is stepped

        # Act: a manual sell of 25 reverses the position.
        await eng.submit(OrderTicket("AAPL", Side.SELL, 25, OrderType.MKT))
        await eventually(lambda: eng.portfolio.quantity("AAPL") == -15, what="the reversing sell's fill")
        assert stop.order_ref in eng.cancels_asked  # asked as the fill was taken

        # Assert: the old sell stop still works (its cancel unanswered), yet it is not the short's stop.
        assert status(eng, stop.order_ref).is_working
        account = eng.snapshot().account
        assert account.positions["AAPL"].stop_price is None
        assert unprotected_positions(account) == ("AAPL SHORT 15",)
