"""The gateway's nightly restart: the simulator stops and comes back on the same port with its state."""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain import ConnectionState, OrderStatus, OrderType, TradingState
from tui_trader.sim import ManualClock, SimGateway

from .helpers import buy, eventually, gateway_keeping_state, make_config, make_engine, sell, status

S = OrderStatus


async def test_gateway_restarted_with_state_then_engine_reconnects_resubscribes_reconciles_without_duplicates(
        tmp_path: Path) -> None:
    before, clock, state = await gateway_keeping_state(tmp_path)
    engine = make_engine(before, make_config(tmp_path))
    await engine.start()
    await eventually(lambda: "AAPL" in engine.market.quotes)
    entry = await engine.submit(buy(10))
    await eventually(lambda: status(engine, entry.order_ref) is S.FILLED, what="entry filled")
    limit = round(engine.market.quotes["AAPL"].ask + 1.0, 2)
    exit_order = await engine.submit(sell(10, order_type=OrderType.LMT, limit_price=limit))
    await eventually(lambda: status(engine, exit_order.order_ref) is S.SUBMITTED)
    refs_before = before.order_refs()

    await before.stop()  # the nightly restart
    await eventually(lambda: engine.connection.state is ConnectionState.DISCONNECTED, what="disconnect seen")
    after = SimGateway(port=before.port, clock=clock, seed=7, always_open=True, state_path=state)
    await after.start()

    await eventually(lambda: engine.reconnects >= 1 and engine.connection.state is ConnectionState.CONNECTED
                     and not engine.blocks, what="reconnected and reconciled")
    assert status(engine, exit_order.order_ref) is S.SUBMITTED
    after.control.set_price("MSFT", 321.0)
    await eventually(lambda: engine.market.quotes["MSFT"].last == 321.0, what="quotes resubscribed")
    after.control.set_price("AAPL", limit + 0.5)
    await eventually(lambda: status(engine, exit_order.order_ref) is S.FILLED, what="exit filled after restart")
    await eventually(lambda: after.positions().get("AAPL", 0) == 0)
    assert engine.portfolio.quantity("AAPL") == 0
    assert engine.trading_state is TradingState.ACTIVE  # no mismatch, nothing unknown
    refs = [*refs_before, *after.order_refs()]
    assert len(refs) == len(set(refs)) == 2
    assert after.duplicate_order_refs() == []
    await engine.stop()
    await after.stop()


async def test_gateway_down_for_several_attempts_then_one_reconnect_counted(tmp_path: Path) -> None:
    # Every attempt was counted: a gateway down for a while read as many reconnects (a headless summary
    # of a run that never connected again said 2).
    clock = ManualClock()
    before = SimGateway(port=0, clock=clock, seed=7, always_open=True)
    await before.start()
    engine = make_engine(before, make_config(tmp_path))
    await engine.start()
    await before.stop()
    failures: set[object] = set()

    def failed_three_times() -> bool:
        failures.add(engine.connection.last_error_at)
        return len(failures - {None}) >= 3

    await eventually(failed_three_times, what="three failed reconnect attempts")
    after = SimGateway(port=before.port, clock=clock, seed=7, always_open=True)
    await after.start()
    try:
        await eventually(lambda: engine.connection.state is ConnectionState.CONNECTED and not engine.blocks,
                         what="reconnected")
        assert engine.reconnects == 1
        assert engine.connection.reconnects == 1
    finally:
        await engine.stop()
        await after.stop()
