"""Live mode: an approval asked before the operator armed is open for its whole timeout once armed.

QA armed at 03:18:29 after a while in the preflight, and the six approvals the strategies had asked meanwhile were
EXPIRED at 03:18:30: their 30 s had run while the console could not show them (it opens none until armed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui_trader.domain import Mode, OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, make_config, running, status


@asynccontextmanager
async def _live_unarmed(tmp_path: Path) -> AsyncIterator[tuple[SimGateway, Engine, list[datetime]]]:
    """A live engine, not armed yet, on a live-account simulator, with its first quote; approvals required for 30 s;
    its clock the one-item list yielded (the test moves it), its periodic tick left to the test."""
    now = [datetime.now(UTC)]
    config = make_config(tmp_path, mode=Mode.LIVE, approvals_required=True, approval_timeout_s=30.0,
                         tick_interval_s=3600.0)
    async with SimGateway(port=0, clock=ManualClock(), live_account=True, always_open=True) as gw, \
            running(gw, config, clock=lambda: now[0]) as (engine, _):
        await eventually(lambda: "AAPL" in engine.market.quotes, what="first quote")
        yield gw, engine, now


async def test_live_when_an_approval_waits_through_the_preflight_then_its_timeout_starts_when_armed(
        tmp_path: Path) -> None:
    # Arrange: a live engine not armed yet, with an approval asked
    async with _live_unarmed(tmp_path) as (gw, engine, now):
        order = await engine.submit(buy(5))
        ref = order.order_ref
        # Act: the preflight stays open for two minutes, then the operator arms
        now[0] += timedelta(minutes=2)
        engine.expire_approvals()  # as the monitor tick does
        assert status(engine, ref) is OrderStatus.PENDING_APPROVAL
        engine.arm(gw.account_id)
        # Assert: the whole timeout from the arming, then expiry as ever
        (item,) = engine.snapshot().pending_approvals
        assert item.expires_at == now[0] + timedelta(seconds=30)
        now[0] += timedelta(seconds=29)
        engine.expire_approvals()
        assert status(engine, ref) is OrderStatus.PENDING_APPROVAL
        now[0] += timedelta(seconds=1)
        engine.expire_approvals()
        assert status(engine, ref) is OrderStatus.EXPIRED
        assert gw.order_refs() == []


async def test_live_when_armed_before_an_approval_is_asked_then_it_expires_after_its_timeout(tmp_path: Path) -> None:
    async with _live_unarmed(tmp_path) as (gw, engine, now):
        engine.arm(gw.account_id)
        asked_at = now[0]
        order = await engine.submit(buy(5))
        (item,) = engine.snapshot().pending_approvals
        assert item.expires_at == asked_at + timedelta(seconds=30)
        now[0] += timedelta(seconds=30)
        engine.expire_approvals()
        assert status(engine, order.order_ref) is OrderStatus.EXPIRED
