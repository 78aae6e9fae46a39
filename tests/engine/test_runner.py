"""The headless runner and the factory: --headless --sim trades and writes a consistent summary."""

from __future__ import annotations

import json
from pathlib import Path

from tui_trader.config import Settings
from tui_trader.domain import Mode, OrderStatus
from tui_trader.engine.engine import Engine
from tui_trader.engine.runner import run_headless, summarize
from tui_trader.sim import SimGateway

from .helpers import buy, eventually, status


def test_headless_sim_run_trades_and_summary_agrees_with_the_broker(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.SIM, confirm=False, headless=True, state_dir=tmp_path,
                        sim={"port": 0, "seed": 7})
    out = tmp_path / "summary.json"
    assert run_headless(settings, 12.0, out) == 0
    summary = json.loads(out.read_text())
    for key in ("mode", "account", "trading_state", "kill_engaged", "orders", "fills", "positions",
                "realized_pnl", "unrealized_pnl", "commissions", "alerts", "reconnects"):
        assert key in summary
    assert summary["mode"] == "sim"
    assert summary["account"].startswith("DU")
    assert summary["fills"] > 0
    assert summary["positions"] == summary["broker_positions"]
    assert summary["commissions"] > 0


async def test_summary_when_made_after_the_stop_then_final_and_compared_with_the_brokers_last_positions(
        sim: SimGateway, engine: Engine) -> None:
    order = await engine.submit(buy(10))
    await eventually(lambda: status(engine, order.order_ref) is OrderStatus.FILLED, what="buy filled")
    await eventually(lambda: any(p.symbol == "AAPL" and p.quantity == 10 for p in engine.broker.positions()),
                     what="the broker's position streamed")
    await engine.stop()  # the runner summarizes after this: a fill that comes while stopping is counted
    assert not engine.broker.positions()  # ib_async forgets them at the disconnect
    summary = summarize(engine)
    assert summary["positions"] == summary["broker_positions"] == {"AAPL": 10} == sim.positions()
    assert summary["positions_match"] is True
    assert summary["fills"] == len(sim.executions()) == 1
