"""Memory stays bounded over a long session: finished orders, fills and ib_async's trade caches.

The bounds never weaken a safety rule: an execution replayed after its fill left memory is still
booked once (the journal decides), and an order whose bracket child still works keeps its parent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tui_trader.domain import Fill, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.domain.market import Bar
from tui_trader.engine.market import BarSeries
from tui_trader.engine.orders import OrderManager
from tui_trader.engine.strategy_runner import MIN_BARS_KEPT
from tui_trader.ops.memory import TRIM_EVERY
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, make_config, make_engine, running, sell, strategy

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
S = OrderStatus


def _filled(om: OrderManager, n: int, parent_ref: str | None = None) -> str:
    order = om.create(OrderTicket("AAPL", Side.BUY, 1), S.APPROVED, NOW, parent_ref=parent_ref)
    om.move(order.order_ref, S.SENDING, NOW)
    om.bind(order.order_ref, 1000 + n)
    om.apply_fill(Fill(f"x{n}", order.order_ref, "AAPL", Side.BUY, 1, 10.0, NOW + timedelta(seconds=n)), NOW)
    return order.order_ref


def test_many_orders_finish_then_only_the_newest_finished_ones_stay_in_memory() -> None:
    om = OrderManager("tt", finished_kept=10)
    working = om.create(OrderTicket("MSFT", Side.BUY, 1), S.APPROVED, NOW)
    refs = [_filled(om, n) for n in range(200)]

    assert len(om.orders) == 11
    assert working.order_ref in om.orders
    assert set(refs[-10:]) <= set(om.orders)
    assert om.finished_count == 200
    assert om.forgotten == {S.FILLED: 190}  # summaries still count every order
    assert len(om._by_broker_id) == 10  # noqa: SLF001 - the index must shrink with the orders


def test_many_orders_created_rejected_then_only_the_newest_stay_in_memory() -> None:
    # A risk denial creates its order already REJECTED: it must age out like any finished order.
    om = OrderManager("tt", finished_kept=10)
    refs = [om.create(OrderTicket("AAPL", Side.BUY, 1), S.REJECTED, NOW).order_ref for _ in range(200)]

    assert set(om.orders) == set(refs[-10:])
    assert om.finished_count == 200
    assert om.forgotten == {S.REJECTED: 190}


def test_parent_finished_while_its_bracket_child_works_then_parent_is_kept() -> None:
    om = OrderManager("tt", finished_kept=5)
    parent = _filled(om, 0)
    child = om.create(OrderTicket("AAPL", Side.SELL, 1), S.APPROVED, NOW, parent_ref=parent)
    om.move(child.order_ref, S.SENDING, NOW)
    for n in range(1, 50):
        _filled(om, n)

    assert parent in om.orders
    assert om.children(parent) == [om.orders[child.order_ref]]


def test_fills_older_than_the_fill_memory_are_forgotten_and_then_not_decided_in_memory() -> None:
    om = OrderManager("tt")
    om.fill_memory = timedelta(minutes=10)
    for n in range(0, 3600, 60):  # an hour of fills, one a minute
        _filled(om, n)

    assert len(om.fills) <= 21  # pruned at most every fill_memory: never more than twice its span
    old = Fill("x0", "", "AAPL", Side.BUY, 1, 10.0, NOW)
    recent_unknown = Fill("new", "", "AAPL", Side.BUY, 1, 10.0, NOW + timedelta(seconds=3550))
    assert not om.remembers(old)  # the caller must ask the journal
    assert om.remembers(recent_unknown)  # memory holds every fill of its time: it is new
    assert om.apply_fill(om.fills["x3540"], NOW) is None  # a recent duplicate is still dropped here


def test_commissions_for_fills_that_never_arrive_are_bounded() -> None:
    om = OrderManager("tt")
    for n in range(5000):
        om.apply_commission(f"ghost{n}", 1.0, None)

    assert len(om._pending_commissions) <= 1000  # noqa: SLF001 - the buffer under test


async def test_many_orders_through_ib_async_then_its_trade_and_fill_caches_stay_bounded(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        ib = engine.broker.ib  # type: ignore[attr-defined]
        engine.broker.finished_trades_kept = 5  # type: ignore[attr-defined]
        for n in range(40):
            order = await engine.submit(buy(1) if n % 2 == 0 else sell(1))
            await eventually(lambda ref=order.order_ref: engine.orders.orders[ref].status is S.FILLED,
                             what=f"order {n} filled")
        await eventually(lambda: len(engine.orders.fills) == 40
                         and all(f.commission is not None for f in engine.orders.fills.values()),
                         what="every commission")
        await ib.reqCurrentTimeAsync()

        assert len(ib.wrapper.trades) <= 5 + 20
        assert len(ib.wrapper.fills) <= 5 + 20
        assert {id(t) for t in ib.wrapper.permId2Trade.values()} <= {id(t) for t in ib.wrapper.trades.values()}
        assert engine.journal is not None
        await engine.journal.flush()
        assert len(await engine.journal.fills()) == 40
        assert engine.portfolio.quantity("AAPL") == 0


async def test_fill_replayed_after_it_left_memory_then_journal_dedups_it_on_reconnect_and_live(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        engine.orders.fill_memory = timedelta(seconds=5)
        first = await engine.submit(buy(10))
        await eventually(lambda: engine.orders.orders[first.order_ref].status is S.FILLED, what="first fill")
        (old,) = engine.orders.fills.values()
        sim.control.step(30.0)
        second = await engine.submit(buy(5))
        await eventually(lambda: engine.orders.orders[second.order_ref].status is S.FILLED, what="second fill")
        assert old.exec_id not in engine.orders.fills  # forgotten: only the journal knows it now
        assert engine.journal is not None
        await engine.journal.flush()

        sim.control.drop_sessions()  # reconnect: the reconciliation fetches both executions again
        await eventually(lambda: engine.reconnects >= 1 and "reconciling" not in engine.blocks, timeout=10,
                         what="reconnected and reconciled")
        engine.on_fill(old)  # and a live replay of the old execution
        await eventually(lambda: not [t for t in engine._tasks if t.get_name().startswith("old-fill")],  # noqa: SLF001
                         what="journal check done")

        assert engine.portfolio.quantity("AAPL") == 15
        assert len(await engine.journal.fills()) == 2
        kinds = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
        assert "fill_recovered" not in kinds
        assert "unknown_fill" not in kinds


async def test_order_working_while_many_finish_then_cancelled_then_its_trade_is_kept_as_newest(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        ib = engine.broker.ib  # type: ignore[attr-defined]
        engine.broker.finished_trades_kept = 3  # type: ignore[attr-defined]
        far = round(engine.market.quotes["AAPL"].bid * 0.5, 2)
        resting = await engine.submit(buy(1, order_type=OrderType.LMT, limit_price=far))
        await eventually(lambda: engine.orders.orders[resting.order_ref].status is S.SUBMITTED, what="resting")
        for n in range(30):
            order = await engine.submit(buy(1) if n % 2 == 0 else sell(1))
            await eventually(lambda ref=order.order_ref: engine.orders.orders[ref].status is S.FILLED,
                             what=f"order {n} filled")
        await engine.cancel(resting.order_ref)
        await eventually(lambda: engine.orders.orders[resting.order_ref].status is S.CANCELLED, what="cancelled")
        await ib.reqCurrentTimeAsync()
        engine.broker.prune_finished()  # type: ignore[attr-defined]

        broker_id = engine.orders.orders[resting.order_ref].broker_id
        assert (ib.wrapper.clientId, broker_id) in ib.wrapper.trades  # finished last: kept
        kinds = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
        assert "broker_error" not in kinds  # every cancel notice found its order


def test_bar_series_after_a_long_session_then_history_and_frame_are_bounded() -> None:
    series = BarSeries("AAPL", 60, maxlen=100)
    for n in range(6 * 720):  # six hours of 5-second bars
        series.add(Bar("AAPL", NOW + timedelta(seconds=5 * n), 10.0, 10.5, 9.5, 10.0, 100.0))

    assert len(series.bars) == 100
    assert len(series.frame()) == 100
    assert series.frame().index[-1] == series.bars[-1].time


def test_two_strategies_on_one_series_then_it_keeps_what_the_longer_lookback_needs(
        sim: SimGateway, tmp_path: Path) -> None:
    strategies = (strategy("ema_cross", ("AAPL",), 60, fast=3, slow=5), strategy("macd", ("AAPL",), 60))
    engine = make_engine(sim, make_config(tmp_path, strategies=strategies))

    engine.load_strategies()

    macd_warmup = engine.strategies["macd"].strategy.warmup_bars
    assert engine.series[("AAPL", 60)].bars.maxlen == max(macd_warmup * 2, MIN_BARS_KEPT)


async def test_orders_forgotten_while_their_ack_watchers_wait_then_the_watchers_end_quietly(
        sim: SimGateway, tmp_path: Path) -> None:
    async with running(sim, make_config(tmp_path)) as (engine, events):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        engine.orders.finished_kept = 2
        first = await engine.submit(buy(1))
        for n in range(8):
            order = await engine.submit(sell(1) if n % 2 == 0 else buy(1))
            await eventually(lambda ref=order.order_ref: engine.orders.orders[ref].status is S.FILLED,
                             what=f"order {n} filled")
        assert first.order_ref not in engine.orders.orders

        await eventually(lambda: not [t for t in engine._tasks if t.get_name().startswith("ack-")],  # noqa: SLF001
                         timeout=10, what="every ack watcher done")

        kinds = [e.alert.kind for e in events.drain() if isinstance(e, AlertRaised)]
        assert "task_failed" not in kinds
        assert "order_unknown" not in kinds


async def test_engine_running_then_it_trims_the_c_heap_once_per_ten_minutes_of_its_clock(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    engine = make_engine(sim, make_config(tmp_path), clock=clock.now)
    if not engine.heap.available:
        pytest.skip("the C library has no malloc_trim (not glibc)")
    await engine.start()
    try:
        await eventually(lambda: "AAPL" in engine.market.quotes, what="quotes")
        engine.tick()
        before = engine.heap.trims

        sim.control.step(TRIM_EVERY.total_seconds() - 60)
        engine.tick()
        assert engine.heap.trims == before  # not due yet
        sim.control.step(61)
        engine.tick()
        engine.tick()

        assert engine.heap.trims == before + 1  # due once, then ten more minutes
        assert engine.heap.last_ms < 1000
    finally:
        await engine.stop()
