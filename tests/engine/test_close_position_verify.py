"""Position closes verify their cancels at the broker: concurrently with each other and with a
reconciliation (ib_async's shared open-orders request key), and their alerts name the close, once each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import ib_async
import pytest

from tui_trader.domain import AlertLevel, OrderStatus
from tui_trader.domain.events import AlertRaised
from tui_trader.engine.engine import Engine
from tui_trader.risk.limits import CancelScope
from tui_trader.sim import SimGateway

from .helpers import (
    SHORT_ACKS,
    alerts_said,
    bracket_buy,
    eventually,
    limits_for_tests,
    make_config,
    outside_client,
    running,
)

S = OrderStatus


async def test_close_positions_when_concurrent_with_a_reconcile_then_every_verification_reaches_the_broker(
        engine: Engine, sim: SimGateway) -> None:
    await bracket_buy(sim, engine, "AAPL")
    await bracket_buy(sim, engine, "MSFT")
    events = engine.subscribe("test", lossless=True)

    await asyncio.gather(engine.close_position("AAPL", "exit signal", "manual"),
                         engine.close_position("MSFT", "max holding time", "manual"),
                         engine.reconcile("cancel race"))

    alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
    assert [a.text for a in alerts if "could not verify" in a.text] == []
    assert [a.text for a in alerts if a.kind in ("cancel_unverified", "order_unknown")] == []
    await eventually(lambda: not engine.portfolio.open_positions(), what="both positions closed")


@SHORT_ACKS
async def test_close_position_when_cancel_unanswered_then_alert_names_the_close_not_the_kill_switch(
        engine: Engine, sim: SimGateway) -> None:
    await bracket_buy(sim, engine, "AAPL")
    sim.control.drop_messages("order_status", -1)  # the stop's cancel is never confirmed
    sim.control.drop_messages("error", -1)
    events = engine.subscribe("test", lossless=True)

    await engine.close_position("AAPL", "exit signal", "manual")

    alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised)]
    unverified = [a for a in alerts if a.kind in ("cancel_unverified", "exit_not_sent")]
    assert [(a.source, a.kind) for a in unverified] == [("close_position", "exit_not_sent")]  # said once, by the close
    assert engine.risk.kill_state.engaged is False


async def _sell_placed_in_tws(sim: SimGateway) -> str:
    """A limit SELL 3 AAPL above the market, placed by another client (TWS) and left working: its ref as the engine
    names an order it does not track."""
    async with outside_client(sim) as (outsider, aapl):
        trade = outsider.placeOrder(aapl, ib_async.LimitOrder("SELL", 3, round(sim.quote("AAPL").ask * 1.03, 2)))
        await eventually(lambda: trade.orderStatus.status == "Submitted", what="resting in TWS")
    return f"broker#{trade.order.orderId}"


@pytest.mark.parametrize("in_tws", [False, True], ids=["stop-only", "and-a-sell-placed-in-tws"])
async def test_flatten_when_stop_cancel_unanswered_then_one_critical_alert_per_order_left(
        sim: SimGateway, tmp_path: Path, in_tws: bool) -> None:
    # The stop whose cancel went unanswered was said twice, both CRITICAL: "still working after cancel" by the
    # cancel check, then "flatten of AAPL not sent" as the flatten gave it up. A sell placed in TWS (global scope:
    # the check sees it) is said by the cancel check alone: nothing else names it, and it could fill beside the flatten.
    limits = limits_for_tests(kill_cancel_scope=CancelScope.GLOBAL if in_tws else CancelScope.OWN)
    async with running(sim, make_config(tmp_path, ack_timeout_s=0.2, limits=limits)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await bracket_buy(sim, eng)
        in_tws_ref = await _sell_placed_in_tws(sim) if in_tws else None
        sim.control.ignore_cancels()
        events.drain()

        await eng.flatten(preview=False)

        critical = [(a.kind, a.text) for a in alerts_said(events) if a.level is AlertLevel.CRITICAL]
        said_in_tws = [("cancel_unverified", f"still working after cancel: {in_tws_ref}")] if in_tws_ref else []
        assert critical == [*said_in_tws, ("exit_not_sent", "flatten of AAPL not sent: AAPL's protective orders are "
                                           "not confirmed cancelled (the broker has not answered); reconciliation "
                                           "will settle them, and the position may be left without them")]
        assert [o.working for o in sim.orders() if o.client_id == 99] == ([True] if in_tws else [])


async def test_close_position_beside_a_sell_placed_in_tws_then_the_cancel_check_names_it_once(
        sim: SimGateway, tmp_path: Path) -> None:
    # A strategy's exit cancelled the stop and went, and said nothing of a sell placed in TWS still working in the
    # symbol (global scope: the check sees it): both could fill, and only a flatten named it.
    limits = limits_for_tests(kill_cancel_scope=CancelScope.GLOBAL)
    async with running(sim, make_config(tmp_path, limits=limits)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await bracket_buy(sim, eng)
        in_tws = await _sell_placed_in_tws(sim)
        events.drain()

        await eng.close_position("AAPL", "exit signal", "manual")

        critical = [(a.kind, a.text) for a in alerts_said(events) if a.level is AlertLevel.CRITICAL]
        assert critical == [("cancel_unverified", f"still working after cancel: {in_tws}")]
        await eventually(lambda: not eng.portfolio.open_positions(), what="the position closed")
