"""A protective order a previous run left working, larger than its position in a dry run.

A dry run sends no modification, so the cut of such an order fails at every re-check (``cut_recheck_s``):
said CRITICAL once, not at every re-check.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from tui_trader.domain import AlertLevel, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain.events import AlertRaised
from tui_trader.sim import SimGateway

from .helpers import bracket_buy, eventually, make_config, running, status

S = OrderStatus


async def test_stop_larger_than_its_position_in_a_dry_run_then_said_critical_once_not_at_every_recheck(
        sim: SimGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Arrange: a run leaves long 100 with its stop of 100 and a sell limit of 30 working at the broker.
    caplog.set_level(logging.INFO, logger="tui_trader.engine.core")  # the alerts, as logged
    caplog.set_level(logging.DEBUG, logger="tui_trader.engine.cuts")  # after: the handler's level is the last
    config = make_config(tmp_path)
    async with running(sim, config) as (eng, _):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        stop = await bracket_buy(sim, eng, qty=100)
        limit = round(sim.quote("AAPL").ask + 1, 2)
        sell = await eng.submit(OrderTicket("AAPL", Side.SELL, 30, OrderType.LMT, limit_price=limit))
        await eventually(lambda: status(eng, sell.order_ref) is S.SUBMITTED, what="the sell limit working")
    # Act: a dry run starts; the sell fills at the broker, the stop is larger than the 70 held.
    async with running(sim, replace(config, dry_run=True, cut_recheck_s=0.01)) as (eng, events):
        await eventually(lambda: "AAPL" in eng.market.quotes)
        sim.control.set_quote("AAPL", limit + 0.5, limit + 0.6, 500, 500)
        await eventually(lambda: status(eng, sell.order_ref) is S.FILLED, what="the sell filled")
        await eventually(lambda: _tries(caplog, stop.order_ref) >= 4, what="the first try and three re-checks'")
        # Assert: said once, at the first try.
        alerts = [e.alert for e in events.drain() if isinstance(e, AlertRaised) and e.alert.source == "protection"]
    assert [(a.level, a.text.split(" (dry run")[0]) for a in alerts] == [
        (AlertLevel.CRITICAL, f"{stop.order_ref} (STP 100 AAPL) is larger than the position of 70 and could not be cut "
                              "to it")]
    assert [o.total_qty for o in sim.orders() if o.order_ref == stop.order_ref] == [100]  # nothing sent


def _tries(caplog: pytest.LogCaptureFixture, order_ref: str) -> int:
    """How many cuts of ``order_ref`` failed: said (the alert as logged) or not (logged at DEBUG)."""
    said = f"protection: {order_ref} (STP 100 AAPL) is larger than the position of 70 and could not be cut"
    again = f"{order_ref}: cut to the position of 70 failed again"
    return sum(r.getMessage().startswith((said, again)) for r in caplog.records)
