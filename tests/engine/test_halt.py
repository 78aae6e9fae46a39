"""A trading halt at the exchange (IB's "Halted" tick, 49), against the simulator.

QA: ``halt SPY`` on the simulator's control port gave no alert; the ticket preview showed every check ok; a
BUY 1 SPY LMT was sent and rejected by the broker ("Trading in SPY is halted"), said only in the orders row;
and an exit cancelled the position's stop first, then was rejected: the halt left the position bare. Now the
halt and its end are said (one WARNING, one INFO), the gate denies the symbol's orders before anything is
sent, and an exit is denied before its stop is cancelled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, OrderStatus, OrderType, Side
from tui_trader.engine.broker_events import HALT_OVER, HALTED
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.risk.market_checks import HALTED as HALTED_CHECK
from tui_trader.sim import SimGateway

from .helpers import (
    CLIENT_ID,
    alerts_said,
    below_bid,
    buy,
    eventually,
    link_down,
    make_config,
    protected_long,
    running,
    status,
    working_at_broker,
)

S = OrderStatus


async def _halt(sim: SimGateway, engine: Engine, symbol: str = "AAPL", halted: bool = True) -> None:
    """Halt (or resume) ``symbol`` at the simulator and wait until the engine's quote says so."""
    sim.control.halt(symbol, halted)
    await eventually(lambda: engine.market.quotes[symbol].halted is halted, what=f"the quote halted={halted}")


def _halts_said(events: Subscription) -> list[tuple[AlertLevel, str]]:
    return [(a.level, a.text) for a in alerts_said(events, source="market") if a.kind in (HALTED, HALT_OVER)]


async def test_halt_when_a_symbol_halts_then_said_once_and_its_entries_denied_until_it_resumes(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: {"AAPL", "MSFT"} <= set(eng.market.quotes), what="first quotes")
        sent_before = len(sim.order_refs())

        # Act: halted; a quote more while halted is no news.
        await _halt(sim, eng)
        sim.control.halt("AAPL")
        entry = await eng.submit(buy(1, order_type=OrderType.LMT, limit_price=below_bid(eng)))

        # Assert: said once; previewed and submitted, denied by the gate, nothing sent.
        assert _halts_said(events) == [(AlertLevel.WARNING, "AAPL halted: trading halt at the exchange; no order of "
                                        "AAPL is sent until it resumes, exits included (a position's stop and "
                                        "target stay at the broker)")]
        verdict = eng.preview(buy(1, order_type=OrderType.LMT, limit_price=below_bid(eng)))
        check = verdict.check(HALTED_CHECK)
        assert check is not None
        assert (check.passed, check.message) == (False, "AAPL is halted (trading halt at the exchange)")
        assert status(eng, entry.order_ref) is S.REJECTED
        assert "AAPL is halted (trading halt at the exchange)" in entry.history[-1].note
        assert len(sim.order_refs()) == sent_before
        assert eng.preview(buy(1, "MSFT", order_type=OrderType.LMT, limit_price=1.0)).check(HALTED_CHECK) is None

        # Act: resumed.
        await _halt(sim, eng, halted=False)
        again = await eng.submit(buy(1, order_type=OrderType.LMT, limit_price=below_bid(eng)))

        # Assert
        assert _halts_said(events) == [(AlertLevel.INFO, "AAPL resumed: the trading halt at the exchange is over")]
        await eventually(lambda: status(eng, again.order_ref) is S.SUBMITTED, what="the entry working")
        assert sim.order_refs()[-1] == again.order_ref


@pytest.mark.parametrize("how", ["strategy exit", "flatten", "exit approved during the halt"])
async def test_exit_when_the_symbol_is_halted_then_denied_and_its_stop_kept_at_the_broker(
        sim: SimGateway, tmp_path: Path, how: str) -> None:
    # Arrange: long 10 with its stop and target working; then the halt.
    approved = how == "exit approved during the halt"
    async with running(sim, make_config(tmp_path, approvals_required=approved, approval_timeout_s=60)) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        _, stop, target = await protected_long(eng, approve=approved)
        sells_before = _sells(sim)
        if approved:  # asked before the halt: it waits for the operator with the protection in force
            await eng.close_position("AAPL", "exit signal", "ema_cross")
        await _halt(sim, eng)

        # Act
        if how == "flatten":
            await eng.flatten(preview=False)
        elif approved:
            (waiting,) = eng.exits_pending("AAPL")
            eng.approve(waiting.order_ref)
            await eventually(lambda: status(eng, waiting.order_ref) is S.REJECTED, what="the approved exit denied")
        else:
            await eng.close_position("AAPL", "exit signal", "ema_cross")

        # Assert: the stop and target still work at the broker, no sell went, the exit denied saying why.
        assert {status(eng, stop.order_ref), status(eng, target.order_ref)} == {S.SUBMITTED}
        assert working_at_broker(sim) == {stop.order_ref: 10, target.order_ref: 10}
        assert _sells(sim) == sells_before
        (denied,) = [o for o in eng.orders.orders.values() if o.ticket.reduce_only and o.parent_ref is None]
        assert denied.status is S.REJECTED
        assert ("AAPL is halted (trading halt at the exchange): the exit is denied; ask again once it resumes"
                in denied.history[-1].note)


def _sells(sim: SimGateway) -> list[str]:
    """The sell orders the broker received (not the approval's what-if: no order)."""
    return [r.order_ref for r in sim.received_orders() if r.action == Side.SELL.value and not r.what_if]


async def test_halt_when_the_link_is_made_again_during_it_then_it_holds_unsaid_until_the_symbol_resumes(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: AAPL halted, said; the new subscription's halted tick will come late (IB's follows the prices).
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await _halt(sim, eng)
        events.drain()
        before = eng.market.quotes["AAPL"]
        sim.control.delay_messages("halted", 60)

        # Act: the link lost and made again; the new subscription's prices come, IB has not said halted yet.
        sim.control.drop_sessions(CLIENT_ID)
        await eventually(lambda: eng.reconnects == 1 and eng.market.quotes["AAPL"] is not before,
                         what="a quote after the reconnect")

        # Assert: still halted, its orders still denied, nothing said.
        assert eng.market.quotes["AAPL"].halted
        check = eng.preview(buy(1, order_type=OrderType.LMT, limit_price=below_bid(eng))).check(HALTED_CHECK)
        assert check is not None
        assert not check.passed
        assert _halts_said(events) == []

        # Act: IB's halted tick comes (1); then AAPL resumes.
        told = eng.market.quotes["AAPL"]
        sim.control.delay_messages("halted", 0)
        sim.control.step(61)
        await eventually(lambda: eng.market.quotes["AAPL"] is not told, what="the halted tick heard")
        await _halt(sim, eng, halted=False)

        # Assert: its end said once.
        assert _halts_said(events) == [(AlertLevel.INFO, "AAPL resumed: the trading halt at the exchange is over")]


async def test_halt_when_it_ends_while_the_link_is_down_then_its_end_is_said_once_reconnected(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: AAPL halted, said; the link down.
    async with running(sim, make_config(tmp_path)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        await _halt(sim, eng)
        await link_down(eng, sim)
        events.drain()

        # Act: AAPL resumes with nobody subscribed; the link is made again.
        sim.control.resume("AAPL")
        sim.control.refuse_connections(0)

        # Assert: the new subscription's halted tick (0) ends the halt, said once.
        await eventually(lambda: eng.market.quotes["AAPL"].halted is False, what="the halted tick (0) heard")
        assert _halts_said(events) == [(AlertLevel.INFO, "AAPL resumed: the trading halt at the exchange is over")]
