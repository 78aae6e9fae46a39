"""A restarted engine remembers what the run before it sent: its throttle and its duplicate check are
seeded from the journal's records of the messages put on the wire (places, modifies, cancels) and from
the orders it left in SENDING, so a crash loop cannot send a full per-minute budget per restart, nor the
order just sent again right after a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path

from tui_trader.domain import Bracket, OrderStatus, OrderType
from tui_trader.domain.events import OrderDenied
from tui_trader.engine.core import utc_now
from tui_trader.sim import SimGateway

from .crash_child_rate import LIMITS
from .helpers import buy, eventually, limits_for_tests, make_config, running, status

S = OrderStatus
ROOT = Path(__file__).resolve().parents[2]


async def _kill_child_after_bracket(sim: SimGateway, journal_dir: Path) -> list[str]:
    """A child engine sends a bracket (its three messages reach the simulator) and is SIGKILLed: its refs."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.crash_child_rate", str(sim.port), str(journal_dir),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    refs = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
    await eventually(lambda: set(refs) <= set(sim.order_refs()), what="bracket received by the simulator")
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    return refs


async def test_restart_after_sigkill_when_the_minute_budget_was_sent_then_throttle_and_duplicate_deny(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a run sends a bracket (3 messages: the whole budget of 3 a minute) and is killed at once.
    entry_ref, *_ = await _kill_child_after_bracket(sim, tmp_path)
    async with running(sim, make_config(tmp_path, limits=LIMITS)) as (engine, events):
        await eventually(lambda: status(engine, entry_ref) is S.FILLED and not engine.blocks,
                         what="entry adopted as filled, reconciled")
        received = len(sim.order_refs())
        # Act: a new order, and the killed run's entry again.
        other = await engine.submit(buy(5))
        again = await engine.submit(engine.orders.orders[entry_ref].ticket)
        # Assert: (a) the throttle counts the messages sent before the restart; (b) the entry is a duplicate.
        denied = {e.order_ref: e.verdict for e in events.drain() if isinstance(e, OrderDenied)}
        assert status(engine, other.order_ref) is S.REJECTED
        assert [c.name for c in denied[other.order_ref].failures] == ["throttle_per_minute"]
        assert denied[other.order_ref].failures[0].message.startswith("message rate exceeded")
        assert status(engine, again.order_ref) is S.REJECTED
        assert "duplicate" in [c.name for c in denied[again.order_ref].failures]
        assert len(sim.order_refs()) == received  # nothing more reached the broker


async def test_restart_when_an_order_was_just_sent_then_the_same_order_is_denied_as_duplicate(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a market buy sent and filled, then a clean stop (the order is no longer working).
    config = make_config(tmp_path, limits=limits_for_tests(duplicate_window_s=60))
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes and not first.blocks)
        sent = await first.submit(buy(10))
        await eventually(lambda: status(first, sent.order_ref) is S.FILLED)
    async with running(sim, config) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes and not engine.blocks)
        # Act
        verdict = engine.preview(buy(10))
        # Assert: the duplicate check alone denies it; another quantity is not a duplicate.
        assert [c.name for c in verdict.failures] == ["duplicate"]
        assert engine.preview(buy(11)).passed


async def test_restart_when_the_sends_are_older_than_the_windows_then_they_are_ignored(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a bracket takes the minute's budget; the next run starts (by its clock) two minutes later.
    config = make_config(tmp_path, limits=limits_for_tests(max_orders_per_minute=3, duplicate_window_s=60))
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes and not first.blocks)
        mark = first.market.mark("AAPL")
        sent = await first.submit(buy(10, bracket=Bracket(stop_price=round(mark * 0.9, 2),
                                                          take_profit_price=round(mark * 1.1, 2))))
        await eventually(lambda: status(first, sent.order_ref) is S.FILLED)
        assert not first.preview(buy(5)).passed  # the budget is spent in this run

    def later() -> datetime:
        return utc_now() + timedelta(minutes=2)

    async with running(sim, config, clock=later) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes and not engine.blocks)
        # Act / Assert: neither the throttle nor the duplicate check remembers them.
        assert engine.preview(buy(5)).passed
        assert engine.preview(sent.ticket).failures == ()


async def test_restart_after_a_dry_run_then_its_orders_not_placed_count_for_nothing(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: a dry run journals its order as SENDING, then "dry run: not sent": no message went out.
    config = make_config(tmp_path, dry_run=True,
                         limits=limits_for_tests(max_orders_per_minute=1, duplicate_window_s=60))
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes and not first.blocks)
        order = await first.submit(buy(10))
        assert status(first, order.order_ref) is S.CANCELLED
    # Act
    async with running(sim, config) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes and not engine.blocks)
        # Assert: neither the throttle nor the duplicate check counts it, as the run that journaled it did not.
        assert engine.preview(buy(10)).passed


async def test_restart_after_places_a_modify_and_cancels_within_the_minute_then_the_cancels_count_too(
        sim: SimGateway, tmp_path: Path) -> None:
    # Arrange: 5 messages a minute. A run places two resting limits (2 messages), moves one (1) and cancels
    # both (2), then stops. Cancels use the broker's message budget as every message does.
    config = make_config(tmp_path, limits=limits_for_tests(max_orders_per_minute=5))
    async with running(sim, config) as (first, _):
        await eventually(lambda: "AAPL" in first.market.quotes and not first.blocks)
        bid = first.market.quotes["AAPL"].bid
        resting = [await first.submit(buy(q, order_type=OrderType.LMT, limit_price=round(bid - q / 10, 2)))
                   for q in (30, 40)]
        await eventually(lambda: all(status(first, o.order_ref) is S.SUBMITTED for o in resting), what="working")
        assert (await first.modify(resting[0].order_ref, limit_price=round(bid - 2, 2))).passed
        for order in resting:
            await first.cancel(order.order_ref)
        await eventually(lambda: all(status(first, o.order_ref) is S.CANCELLED for o in resting), what="cancelled")
    # Act
    async with running(sim, config) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes and not engine.blocks)
        verdict = engine.preview(buy(5))
    # Assert: the sixth message of the minute is denied (counting places and the modify only, it passed).
    assert [c.name for c in verdict.failures] == ["throttle_per_minute"]
