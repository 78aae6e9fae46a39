"""The invariant checker is not vacuous: a run that breaks the invariants is reported, one by one.

A real client sends two orders with the same orderRef and gets a fill; the journal (the real Journal on
a real SQLite file) knows one of the orders, only as SENDING after the engine HALTED, and none of the fills; the summary
claims other positions and cash; a kill switch was requested and never engaged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import ib_async

from tui_trader.domain import Order, OrderStatus, OrderTicket, OrderType, Side, TradingState
from tui_trader.domain import events as ev
from tui_trader.store.journal import Journal

from .harness import World
from .invariants import check_invariants


async def test_check_invariants_when_a_run_breaks_them_then_each_violation_is_reported(tmp_path: Path) -> None:
    world = World(tmp_path, seed=1, approve="alternate")
    await world.start_sim()
    try:
        ib = ib_async.IB()
        await ib.connectAsync(world.sim.host, world.sim.port, clientId=5, timeout=5)
        (contract,) = await ib.qualifyContractsAsync(ib_async.Stock("AAPL", "SMART", "USD"))
        for _ in range(2):
            ib.placeOrder(contract, ib_async.MarketOrder("BUY", 10, orderRef="dup-1"))
        await ib.reqCurrentTimeAsync()
        ib.disconnect()
        now = datetime.now(UTC)
        journal = await Journal.open(tmp_path / "journal.sqlite")
        journal.append(ev.TradingStateChanged(now - timedelta(seconds=1), TradingState.ACTIVE, TradingState.HALTED,
                                              "operator", "chaos"))
        order = Order("dup-1", OrderTicket("AAPL", Side.BUY, 10, OrderType.MKT), OrderStatus.SENDING, now, now)
        journal.append(ev.OrderUpdated(now, order.with_status(OrderStatus.SENDING, now)))
        await journal.close()
        world.kill_requested_at = 1.0
        summary = {"positions": {}, "cash": 0.0, "kill_engaged": False, "order_status": {"dup-1": "SENDING"}}

        problems = "\n".join(check_invariants(world, summary))
    finally:
        await world.close()

    for expected in ("orderRefs sent more than once: ['dup-1']", "orders sent without the operator's approval",
                     "executions missing from the journal", "engine positions {} != simulator positions",
                     "engine cash", "the kill switch was requested but never engaged",
                     "order dup-1 left SENDING", "orders sent while the engine was HALTED"):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
