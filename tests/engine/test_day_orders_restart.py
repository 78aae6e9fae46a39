"""After a restart the book shows the day's finished orders beside its open ones, as the run before it did.

Against the simulator and a real journal: an engine fills one order, cancels another and leaves a third working,
then stops; a second engine on the same journal starts. Only the open orders were restored, so the orders pane
lost what filled this morning while ``tui-trader report`` still had it. The finished ones come back shown only:
never working, not reconciled, not counted by the risk gate, not alerted or journaled again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui_trader.domain import OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised, OrderUpdated
from tui_trader.domain.orders import Order
from tui_trader.domain.verdicts import RiskVerdict
from tui_trader.engine.bus import Subscription
from tui_trader.engine.engine import Engine
from tui_trader.engine.orders import OrderManager
from tui_trader.engine.runner import summarize
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, limits_for_tests, make_config, running, status

S = OrderStatus
OVERNIGHT_S = 23 * 3600.0
"""From the clock's Tuesday 10:00 to Wednesday 09:00, New York."""


async def morning_orders(engine: Engine) -> tuple[Order, Order, Order]:
    """One order filled, one cancelled, one left working: (filled, cancelled, working)."""
    await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
    filled = await engine.submit(buy(10))
    await eventually(lambda: status(engine, filled.order_ref) is S.FILLED, what="filled")
    limit = round(engine.market.quotes["AAPL"].bid - 5.0, 2)
    cancelled = await engine.submit(buy(5, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, cancelled.order_ref) is S.SUBMITTED, what="resting")
    await engine.cancel(cancelled.order_ref)
    await eventually(lambda: status(engine, cancelled.order_ref) is S.CANCELLED, what="cancelled")
    working = await engine.submit(buy(3, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, working.order_ref) is S.SUBMITTED, what="working")
    return filled, cancelled, working


def _gate_reading(engine: Engine) -> list[tuple[str, bool, float]]:
    """Every check of the gate on an entry like the working one: what it counts, and whether it passes."""
    ticket = OrderTicket("AAPL", Side.BUY, 3, OrderType.LMT, limit_price=round(engine.market.quotes["AAPL"].bid - 5, 2))
    verdict: RiskVerdict = engine.preview(ticket)
    return [(c.name, c.passed, c.value) for c in verdict.checks]


def _restart_said(events: Subscription, refs: set[str]) -> tuple[list[str], list[str]]:
    """The alerts a start raised (their kinds) beside those naming ``refs``, and the refs of ``refs`` it published."""
    seen = events.drain()
    alerts = [e.alert for e in seen if isinstance(e, AlertRaised)]
    naming = [a.text for a in alerts if any(ref in a.text for ref in refs)]
    published = [e.order.order_ref for e in seen if isinstance(e, OrderUpdated) and e.order.order_ref in refs]
    return naming + [a.kind for a in alerts if a.kind.startswith(("order_", "unknown"))], published


async def test_restart_the_same_day_then_the_finished_orders_are_shown_and_nothing_else_changes(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    # Arrange: a morning's three orders, the gate's reading of another entry, then a stop.
    config = make_config(tmp_path, limits=limits_for_tests(max_daily_trades=20, max_daily_trades_per_strategy=20,
                                                           duplicate_window_s=60.0))
    async with running(sim, config, clock.now) as (first, _):
        filled, cancelled, working = await morning_orders(first)
        before = _gate_reading(first)
    finished = {filled.order_ref, cancelled.order_ref}

    # Act: a new engine on the same journal, the same day.
    async with running(sim, config, clock.now) as (second, events):
        await eventually(lambda: second.book_settled and not second.blocks, what="reconciled")
        shown = {o.order_ref: o.status for o in second.snapshot().orders}

        # Assert: all three shown with their statuses; only the working one works.
        assert shown == {filled.order_ref: S.FILLED, cancelled.order_ref: S.CANCELLED, working.order_ref: S.SUBMITTED}
        assert [o.order_ref for o in second.orders.working()] == [working.order_ref]
        # Not reconciled, adopted or alerted again, nor published (journaled) again.
        assert _restart_said(events, finished) == ([], [])
        # The gate counts what it counted before the restart.
        assert _gate_reading(second) == before
        assert second.orders.finished_count == 0  # none finished in this run


async def test_restart_the_next_day_then_yesterdays_finished_orders_are_not_shown(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with running(sim, config, clock.now) as (first, _):
        filled, cancelled, working = await morning_orders(first)

    clock.advance(OVERNIGHT_S)
    async with running(sim, config, clock.now) as (second, _):
        await eventually(lambda: second.book_settled, what="reconciled")

        refs = {o.order_ref for o in second.snapshot().orders}
        assert working.order_ref in refs
        assert not refs & {filled.order_ref, cancelled.order_ref}


async def test_restart_the_same_day_then_the_runs_summary_counts_its_own_orders_not_the_days_finished_ones(
        sim: SimGateway, clock: ManualClock, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with running(sim, config, clock.now) as (first, _):
        await morning_orders(first)

    async with running(sim, config, clock.now) as (second, _):
        await eventually(lambda: "AAPL" in second.market.quotes, what="first quote")
        order = await second.submit(buy(1))
        await eventually(lambda: status(second, order.order_ref) is S.FILLED, what="filled")

    # The restored working order is counted as it was before; the morning's fill and cancel are not this run's.
    assert summarize(second)["orders"] == {"FILLED": 1, "SUBMITTED": 1}


T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def _finished_before(n: int) -> Order:
    order = Order(f"old-{n}", OrderTicket("AAPL", Side.BUY, 1), S.SUBMITTED, T0, T0)
    return order.with_status(S.CANCELLED, T0 + timedelta(seconds=n))


def test_restored_finished_orders_are_forgotten_first_and_never_counted_as_this_runs() -> None:
    # Arrange: three finished before the run, kept as any finished order (newest five).
    om = OrderManager("tt", finished_kept=5)
    om.restore_finished(_finished_before(n) for n in range(3))
    assert om.finished_count == 0
    assert om.earlier == {"old-0", "old-1", "old-2"}

    # Act: the run finishes four of its own.
    ours = [om.create(OrderTicket("AAPL", Side.BUY, 1), S.REJECTED, T0).order_ref for _ in range(4)]

    # Assert: the two oldest restored ones make room, and count neither as this run's nor as forgotten.
    assert set(om.orders) == {"old-2", *ours}
    assert om.earlier == {"old-2"}
    assert om.finished_count == 4
    assert not om.forgotten
