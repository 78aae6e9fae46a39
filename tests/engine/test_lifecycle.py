"""Order lifecycles against the simulator over loopback with the real ib_async client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tui_trader.domain import ConnectionState, OrderStatus, OrderType, Side
from tui_trader.domain.events import OrderUpdated
from tui_trader.engine.engine import Engine
from tui_trader.sim import SimGateway
from tui_trader.store.lock import JournalLock
from tui_trader.strategies.base import Signal

from .helpers import buy, eventually, make_config, make_engine, sell, status, strategy

S = OrderStatus


async def test_start_connects_and_reads_the_simulated_paper_account(engine: Engine, sim: SimGateway) -> None:
    assert engine.account_id == sim.account_id
    assert engine.connection.state is ConnectionState.CONNECTED
    assert engine.market.instruments["AAPL"].con_id > 0


async def test_market_buy_then_filled_with_position_and_commission(engine: Engine, sim: SimGateway) -> None:
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled")
    await eventually(lambda: engine.orders.orders[order.order_ref].commission > 0, what="commission")
    assert engine.portfolio.quantity("AAPL") == 10
    assert sim.positions().get("AAPL") == 10
    history = [h.status for h in engine.orders.orders[order.order_ref].history]
    assert history[:3] == [S.APPROVED, S.SENDING, S.SUBMITTED] or history[:2] == [S.APPROVED, S.SENDING]


async def test_market_buy_when_filled_then_the_position_is_valued_at_the_quote_at_once(
        engine: Engine, sim: SimGateway) -> None:
    # A new position waited for the next quote to be valued: until then equity, exposure and the drawdown
    # counted it at cost (the simulator's clock is stopped here: no next quote comes).
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled")
    mark = engine.market.mark("AAPL")

    position = engine.portfolio.open_positions()["AAPL"]

    assert position.avg_cost != mark  # the fill at the ask, the mark between bid and ask
    assert position.market_price == mark
    assert position.market_value == pytest.approx(10 * mark)
    assert engine.portfolio.equity == pytest.approx(engine.portfolio.cash + 10 * mark)


async def test_limit_order_rests_then_cancelled(engine: Engine, sim: SimGateway) -> None:
    price = round(engine.market.quotes["AAPL"].bid * 0.98, 2)
    order = await engine.submit(buy(5, order_type=OrderType.LMT, limit_price=price))
    await eventually(lambda: status(engine, order.order_ref) is S.SUBMITTED, what="acked")
    await engine.cancel(order.order_ref)
    await eventually(lambda: status(engine, order.order_ref) is S.CANCELLED, what="cancelled")


async def test_sell_short_then_cover_realizes_pnl(engine: Engine, sim: SimGateway) -> None:
    first = await engine.submit(sell(10))
    await eventually(lambda: status(engine, first.order_ref) is S.FILLED)
    assert engine.portfolio.quantity("AAPL") == -10
    second = await engine.submit(buy(10))
    await eventually(lambda: status(engine, second.order_ref) is S.FILLED)
    assert engine.portfolio.quantity("AAPL") == 0
    await eventually(lambda: engine.portfolio.commissions > 0)


async def test_market_buy_when_filled_then_journal_tells_each_step_once_and_in_order(
        engine: Engine, sim: SimGateway) -> None:
    # Arrange / Act: the SENDING record goes to the orders table before the wire; the events follow.
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is S.FILLED, what="filled")
    assert engine.journal is not None
    await engine.journal.flush()
    # Assert: one SENDING step (the history keeps APPROVED), the checks after it, the row not moved back.
    events = await engine.journal.events(order_ref=order.order_ref)
    steps = [(e.previous, e.order.status) for e in events if isinstance(e, OrderUpdated)
             and e.previous is not e.order.status]  # not the updates that only add broker ids
    assert steps[0] == (S.APPROVED, S.SENDING)
    assert [to for _, to in steps].count(S.SENDING) == 1
    assert steps[-1][1] is S.FILLED
    assert [h.status for h in events[0].order.history][:2] == [S.APPROVED, S.SENDING]  # type: ignore[attr-defined]
    kinds = [e.kind for e in events]
    assert kinds[0] == "OrderUpdated"
    assert kinds.index("OrderChecked") < kinds.index("OrderUpdated", 1)  # the checks before the broker's answers
    assert kinds.count("MessagesSent") == 1  # the order's message, counted by a restart's throttle
    journaled = await engine.journal.order(order.order_ref)
    assert journaled is not None
    assert journaled.status is S.FILLED


async def test_submit_when_the_engine_has_begun_to_stop_then_denied_before_the_wire(engine: Engine) -> None:
    # A strategy's exit task or a late signal could otherwise send while the engine stops (after its
    # unsent orders were lapsed and, in a headless run, after the summary was taken).
    stopping = asyncio.create_task(engine.stop())
    await asyncio.sleep(0)  # one loop turn: stop() runs to its first await, the broker still connected
    assert engine.stopping
    assert engine.broker.is_connected

    order = await engine.submit(buy(10))
    await stopping

    assert status(engine, order.order_ref) is S.REJECTED
    assert order.broker_id is None
    assert "the engine is stopping" in engine.orders.orders[order.order_ref].history[-1].note


async def test_strategy_signal_when_the_engine_has_begun_to_stop_then_no_order_at_all(
        sim: SimGateway, tmp_path: Path) -> None:
    # A bar or quote handled while stop() awaits its services: the strategy's entry is not made,
    # not even as a denied order (the gate would deny it, but the operator would read a rejection
    # for an order nobody asked for at shutdown).
    engine = make_engine(sim, make_config(tmp_path, strategies=(strategy("ema_cross"),)))
    await engine.start()
    await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
    stopping = asyncio.create_task(engine.stop())
    await asyncio.sleep(0)  # one loop turn: stop() runs to its first await
    assert engine.stopping

    engine.on_signal(engine.strategies["ema_cross"], "AAPL", Signal(Side.BUY, "a late cross"))
    await stopping

    assert engine.orders.orders == {}
    assert sim.order_refs() == []


async def test_stop_when_cancelled_midway_then_the_journal_is_closed_all_the_same(
        sim: SimGateway, tmp_path: Path) -> None:
    # A stop cancelled before its last step (the console's shutdown worker cancelled as the app exits) left the
    # journal open, and a second stop returned at once: aiosqlite's thread (not a daemon) kept the process alive.
    config = make_config(tmp_path)
    engine = make_engine(sim, config)
    draining = asyncio.Event()
    engine.add_service(lambda: None, draining.wait)  # a service whose stop waits (a notifier draining its queue)
    await engine.start()
    stopping = asyncio.create_task(engine.stop())
    await eventually(lambda: engine.stopping, what="the stop under way")

    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping

    assert config.journal_path is not None
    JournalLock.check(config.journal_path)  # let go of: the journal was closed


async def test_stop_when_asked_while_the_start_opens_the_journal_then_the_start_goes_no_further_and_closes_it(
        sim: SimGateway, tmp_path: Path) -> None:
    # The console quit during the start: the stop found no journal yet to close, the start opened it afterwards and
    # went on to connect a stopped engine; the journal's thread (not a daemon) kept the process from exiting.
    config = make_config(tmp_path)
    engine = make_engine(sim, config)
    starting = asyncio.create_task(engine.start())
    await asyncio.sleep(0)  # one step: the start is inside the journal's open

    await engine.stop()
    await starting

    assert not engine.broker.is_connected
    assert not engine.started
    assert config.journal_path is not None
    JournalLock.check(config.journal_path)  # let go of: the journal was closed
