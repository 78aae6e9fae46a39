"""An order adopted from the broker that can only take its position down is the position's protection.

A stop found working at the broker (its bracket's journal lost, or typed into TWS on the engine's client) was
adopted as a plain order: an automatic trip, which keeps the positions' protective orders, cancelled it and left
the position without a stop, and the positions showed none. Now an adopted stop, stop limit, trailing stop or
limit on the side opposite the broker's position, for no more than it, is adopted as protection. A symbol's
orders are judged together: two stops not linked that would sell 20 against a long of 10 were both adopted as
protection, kept by a trip, and could leave the account short 10; one OCA group (a stop and its target) counts
once. Real engine against the simulator over loopback.
"""

from __future__ import annotations

from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import Order, OrderStatus
from tui_trader.domain.events import AlertRaised, KillChecked
from tui_trader.engine.bus import Subscription
from tui_trader.risk.kill_switch import KillTrigger
from tui_trader.sim import SimGateway
from tui_trader.sim.orders import SimOrder

from .helpers import (
    alerts_said,
    eventually,
    kill_checked,
    long_at_the_broker,
    make_config,
    placed_by_another_tool,
    protected_long,
    running,
)


async def _stop_placed(sim: SimGateway, action: str, qty: float, bid: float, oca_group: str = "") -> SimOrder:
    """A GTC stop ``action`` ``qty`` AAPL 5 below ``bid``, placed on the engine's client by another tool (in
    ``oca_group``, when given)."""
    order = ib_async.Order(action=action, totalQuantity=qty, orderType="STP", auxPrice=round(bid - 5, 2), tif="GTC",
                           ocaGroup=oca_group, ocaType=1 if oca_group else 0)
    if action == "BUY":  # a buy stop above the price, so that it rests
        order.auxPrice = round(bid + 5, 2)
    return await placed_by_another_tool(sim, order)


async def _target_placed(sim: SimGateway, qty: float, bid: float, oca_group: str) -> SimOrder:
    """A GTC SELL LMT ``qty`` AAPL 5 above ``bid`` in ``oca_group``, placed on the engine's client by another tool."""
    order = ib_async.Order(action="SELL", totalQuantity=qty, orderType="LMT", lmtPrice=round(bid + 5, 2), tif="GTC",
                           ocaGroup=oca_group, ocaType=1)
    return await placed_by_another_tool(sim, order)


def _alerts(events: Subscription, kind: str) -> list[str]:
    return [a.text for a in alerts_said(events, kind=kind)]


def _adopted(orders: dict[str, Order]) -> Order:
    (adopted,) = [o for o in orders.values() if o.ticket.strategy == "adopted"]
    return adopted


async def test_stop_adopted_under_a_long_when_an_automatic_trip_then_the_stop_kept_at_the_broker(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 10 at the broker, a SELL STP 10 on the engine's client that its journal never knew.
    held = await _stop_placed(sim, "SELL", 10, await long_at_the_broker(sim))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = _adopted(engine.orders.orders)

        # Act: an automatic trip (it keeps the positions' protection).
        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)

        # Assert: the trip kept the stop: still working at the broker and here.
        checks: list[KillChecked] = []
        await eventually(lambda: checks.extend(e for e in events.drain() if isinstance(e, KillChecked)) or checks,
                         what="the kill's verification")
        assert checks[-1].report.kept == (adopted.order_ref,)
        assert checks[-1].report.verified
        assert held.working
        assert engine.orders.orders[adopted.order_ref].status is OrderStatus.SUBMITTED


async def test_stop_adopted_under_a_long_then_the_positions_show_it_as_the_stop(
        sim: SimGateway, tmp_path: Path) -> None:
    held = await _stop_placed(sim, "SELL", 10, await long_at_the_broker(sim))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.snapshot().account.positions, what="the position seeded")
        account = engine.snapshot().account

        assert account.positions["AAPL"].stop_price == held.aux_price
        assert account.stop_covered("AAPL") == 10
        (said,) = [e.alert.text for e in events.drain()
                   if isinstance(e, AlertRaised) and e.alert.kind == "order_adopted"]
        assert "adopted as protection of AAPL LONG 10" in said


@pytest.mark.parametrize(("action", "qty"), [("BUY", 10), ("SELL", 15)], ids=["same-side", "larger"])
async def test_stop_adopted_on_the_positions_side_or_larger_than_it_then_not_protection(
        sim: SimGateway, tmp_path: Path, action: str, qty: float) -> None:
    held = await _stop_placed(sim, action, qty, await long_at_the_broker(sim))

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = _adopted(engine.orders.orders)
        await eventually(lambda: "AAPL" in engine.snapshot().account.positions, what="the position seeded")

        assert not adopted.ticket.reduce_only
        assert engine.snapshot().account.positions["AAPL"].stop_price is None
        (said,) = [e.alert.text for e in events.drain()
                   if isinstance(e, AlertRaised) and e.alert.kind == "order_adopted"]
        assert "protection" not in said
        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)
        await eventually(lambda: not held.working, what="cancelled by the trip: it could add exposure")


async def test_two_stops_not_linked_adopted_over_a_long_when_an_automatic_trip_then_one_kept_the_other_cancelled(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 10 at the broker; two SELL STP 10 not linked on the engine's client: both triggered, the
    # account would be short 10.
    bid = await long_at_the_broker(sim)
    first = await _stop_placed(sim, "SELL", 10, bid)
    second = await _stop_placed(sim, "SELL", 10, bid)

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = {o.perm_id: o for o in engine.orders.orders.values() if o.ticket.strategy == "adopted"}
        kept, other = adopted[first.perm_id], adopted[second.perm_id]

        # Assert: the first is the position's protection, the second is not, said once with the figures.
        assert kept.ticket.reduce_only
        assert not other.ticket.reduce_only
        await eventually(lambda: "AAPL" in engine.snapshot().account.positions, what="the position seeded")
        assert engine.snapshot().account.stop_covered("AAPL") == 10
        (said,) = _alerts(events, "protection_refused")
        assert said.startswith(f"{kept.order_ref} and {other.order_ref} together would sell 20 against AAPL LONG "
                               f"10: {other.order_ref} not adopted as protection")

        # Act: an automatic trip keeps the protection, cancels what could add exposure.
        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)

        report = (await kill_checked(events)).report
        assert report.kept == (kept.order_ref,)
        assert report.verified
        assert first.working
        assert not second.working


async def test_stop_and_target_in_one_oca_group_adopted_over_a_long_then_both_protection_and_nothing_said(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: long 10 at the broker; a SELL STP 10 and a SELL LMT 10 in one OCA group (one fill cancels the other).
    bid = await long_at_the_broker(sim)
    stop = await _stop_placed(sim, "SELL", 10, bid, oca_group="tws-bracket-1")
    target = await _target_placed(sim, 10, bid, oca_group="tws-bracket-1")

    async with running(sim, make_config(tmp_path)) as (engine, events):
        adopted = [o for o in engine.orders.orders.values() if o.ticket.strategy == "adopted"]

        assert len(adopted) == 2
        assert all(o.ticket.reduce_only for o in adopted)
        await eventually(lambda: "AAPL" in engine.snapshot().account.positions, what="the position seeded")
        position = engine.snapshot().account.positions["AAPL"]
        assert (position.stop_price, position.take_profit_price) == (stop.aux_price, target.lmt_price)
        assert _alerts(events, "protection_refused") == []

        engine.engage_kill("drawdown 5%", "risk:drawdown", KillTrigger.DRAWDOWN)

        report = (await kill_checked(events)).report
        assert sorted(report.kept) == sorted(o.order_ref for o in adopted)
        assert stop.working
        assert target.working


async def test_stop_adopted_beside_the_engine_s_own_bracket_over_its_long_then_not_protection_and_said(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a bracket of the engine's (stop and target, one OCA group) over its long of 10; the engine stops,
    # and another tool places a SELL STP 10 on its client.
    config = make_config(tmp_path)
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes, what="quotes")
        _, stop, target = await protected_long(first)
    extra = await _stop_placed(sim, "SELL", 10, sim.quote("AAPL").bid)

    # Act: the next start adopts it.
    async with running(sim, config) as (second, events):
        (adopted,) = [o for o in second.orders.orders.values() if o.ticket.strategy == "adopted"]

        # Assert: the bracket's stop and target count once, and the stop found beside them does not fit.
        assert adopted.perm_id == extra.perm_id
        assert not adopted.ticket.reduce_only
        (said,) = _alerts(events, "protection_refused")
        assert said.startswith(f"{stop.order_ref}/{target.order_ref} (one OCA group) and {adopted.order_ref} "
                               f"together would sell 20 against AAPL LONG 10: {adopted.order_ref} not adopted")
