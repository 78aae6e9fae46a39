"""An orderRef another tool (or a TWS user) gives every order of its own ("bot1") comes back on a later run: the new
order is one of its own, adopted under a name of its own, and the journal's row of the earlier one is kept."""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import OrderStatus
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.bus import Subscription
from tui_trader.sim import SimGateway
from tui_trader.sim.orders import SimOrder
from tui_trader.store.journal import Journal

from .helpers import REFUSAL, eventually, make_config, placed_by_another_tool, running, status

S = OrderStatus
REF = "bot1"


async def _buy_limit(sim: SimGateway, qty: float, below: float) -> SimOrder:
    """A buy limit of ``qty`` AAPL ``below`` the bid, placed by another tool under the orderRef ``bot1``, working."""
    bid = sim.quote("AAPL").bid
    return await placed_by_another_tool(sim, ib_async.LimitOrder("BUY", qty, round(bid - below, 2), orderRef=REF))


def _adoptions(events: Subscription) -> list[str]:
    """The refs the adoption alerts drained from ``events`` name."""
    return [e.alert.text.split()[3] for e in events.drain()
            if isinstance(e, AlertRaised) and e.alert.kind == "order_adopted"]


async def _ended(sim: SimGateway, held: SimOrder, how: str) -> None:
    """``held``, working at the broker, ends: it fills (the price falls through its limit, then comes back), or it is
    cancelled in TWS."""
    if how == "cancelled":
        sim.control.cancel(REF, perm_id=held.perm_id)
        return
    bid = sim.quote("AAPL").bid
    sim.control.set_price("AAPL", round(held.lmt_price - 0.5, 2))
    await eventually(lambda: held.status == "Filled", what="the first filled")
    sim.control.set_price("AAPL", bid)


@pytest.mark.parametrize("how", ["filled", "cancelled"])
async def test_same_ref_on_a_later_run_when_the_earlier_order_ended_then_the_new_one_adopted_under_its_own_name(
        sim: SimGateway, tmp_path: Path, how: str) -> None:
    # Adopted as plain "bot1", the new order's journal row overwrote the earlier one's (its size, status and fills
    # read as the new order's), and a commission of the earlier fill would have been added to the new order.
    config = make_config(tmp_path)
    first = await _buy_limit(sim, 3, below=3)
    async with running(sim, config) as (engine, _):
        await _ended(sim, first, how)
        await eventually(lambda: status(engine, REF).is_final, what="the first ended")
    second = await _buy_limit(sim, 4, below=2)
    second_ref = f"{REF}#{second.perm_id}"

    async with running(sim, config) as (engine, events):
        assert _adoptions(events) == [second_ref]
        sim.control.set_price("AAPL", round(second.lmt_price - 0.5, 2))
        await eventually(lambda: status(engine, second_ref) is S.FILLED, what="the second filled")
        booked = engine.portfolio.quantity("AAPL")
        blocked = engine.entries_blocked_reason

    assert (booked, blocked) == ((3 if how == "filled" else 0) + 4, "")
    assert config.journal_path is not None
    journal = await Journal.open(config.journal_path)
    try:
        orders = {o.order_ref: (o.perm_id, o.ticket.quantity, o.status, o.filled_quantity)
                  for o in await journal.orders()}
        fills = sorted((f.order_ref, f.quantity) for f in await journal.fills())
    finally:
        await journal.close()
    first_now = (S.FILLED, 3) if how == "filled" else (S.CANCELLED, 0)
    assert orders == {REF: (first.perm_id, 3, *first_now), second_ref: (second.perm_id, 4, S.FILLED, 4)}
    assert fills == sorted([*([(REF, 3)] if how == "filled" else []), (second_ref, 4)])


async def test_same_ref_on_a_later_run_when_a_modify_of_the_new_one_refused_then_the_refusal_is_its_own(
        sim: SimGateway, tmp_path: Path) -> None:
    # The broker's refusal names the order by its orderRef: no order tracked under it (the earlier one ended), it was
    # shown on nothing, and the new order showed the refused size while the broker held the one it had.
    config = make_config(tmp_path)
    first = await _buy_limit(sim, 3, below=3)
    async with running(sim, config) as (engine, _):
        await _ended(sim, first, "cancelled")
        await eventually(lambda: status(engine, REF).is_final, what="the first ended")
    second = await _buy_limit(sim, 4, below=2)

    async with running(sim, config) as (engine, _):
        second_ref = f"{REF}#{second.perm_id}"
        sim.control.refuse_next_modify(201, REFUSAL, order_ref=REF, perm_id=second.perm_id)

        verdict = await engine.modify(second_ref, quantity=5)

        assert verdict.passed, verdict.reason
        await eventually(lambda: engine.orders.orders[second_ref].last_error, what="the refusal heard")
        assert (engine.orders.orders[second_ref].ticket.quantity, second.total_qty) == (4, 4)
        assert not engine.snapshot().modifications
